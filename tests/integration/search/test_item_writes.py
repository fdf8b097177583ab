"""An item's writes against its first vector, interleaved deterministically: the
vector's transaction holds the item's lock while the item's event waits for it."""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import numpy as np
import pytest
from pgvector.psycopg import register_vector_async
from psycopg import AsyncConnection, sql

from photosearch.common.infra import Infra
from photosearch.events.v1 import events_pb2
from photosearch_search import repository as repo
from photosearch_search.domain import EmbeddingIn, ImageRef
from photosearch_search.indexer import Indexer
from photosearch_search.models import IndexParams, ModelRegistry

DIM = 8
MODEL = "test/first-model"
ITEM, IMAGE = "item-1", "img-1"


@pytest.fixture
async def infra(database_url: str) -> AsyncIterator[Infra]:
    infra = Infra(
        "search-test",
        database_url=database_url,
        migrations_package="photosearch_search.migrations",
        vector=True,
    )
    await infra.start()
    yield infra
    assert infra.pool is not None
    await infra.pool.close()


def indexer_for(infra: Infra) -> tuple[Indexer, ModelRegistry]:
    registry = ModelRegistry(infra, IndexParams(16, 64, "64MB", 0))
    # Item events touch neither the job queue nor the worker directory.
    return Indexer(infra, registry, None, None), registry  # type: ignore[arg-type]


async def waiting_for_advisory_lock(infra: Infra) -> bool:
    async with infra.require_pool().connection() as conn:
        cur = await conn.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        )
        row = await cur.fetchone()
    return bool(row and row[0])


async def while_first_vector_holds_the_lock(
    infra: Infra, item_event: Callable[[Indexer], Awaitable[None]]
) -> None:
    """Run the item event while the item's first vector, in an open transaction, holds
    the item's lock; the vector registers the model only once the event is waiting."""
    indexer, registry = indexer_for(infra)
    async with await AsyncConnection.connect(infra.database_url or "") as vec_conn:
        async with vec_conn.transaction():
            await repo.lock_items(vec_conn, [ITEM])
            task = asyncio.ensure_future(item_event(indexer))
            for _ in range(200):
                if await waiting_for_advisory_lock(infra):
                    break
                await asyncio.sleep(0.02)
            else:
                raise AssertionError("the item event never waited for the item's lock")
            model = await registry.ensure(MODEL, DIM)  # commits on its own connection
            vector = np.ones(DIM, dtype=np.float32) / np.sqrt(DIM)
            await register_vector_async(vec_conn)
            kept = await repo.store_embeddings(
                vec_conn, model, ImageRef(IMAGE, ITEM), [EmbeddingIn("global", vector)]
            )
            assert kept
        await task


async def vector_rows(infra: Infra) -> list[tuple[str | None, str | None, list[str]]]:
    registry = ModelRegistry(infra, IndexParams(16, 64, "64MB", 0))
    model = await registry.require(MODEL)
    async with infra.require_pool().connection() as conn:
        cur = await conn.execute(
            sql.SQL("SELECT series, maker, tags FROM {t}").format(t=sql.Identifier(model.table))
        )
        return [(r[0], r[1], list(r[2])) for r in await cur.fetchall()]


async def test_attributes_reach_the_vector_of_a_model_registered_while_waiting(infra):
    event = events_pb2.ItemUpserted(item_id=ITEM, series="Alpha", maker="Acme", tags=["Red"])
    await while_first_vector_holds_the_lock(infra, lambda ix: ix.item_upserted(event, seq=1))
    assert await vector_rows(infra) == [("alpha", "acme", ["red"])]


async def test_deleting_the_item_drops_the_vector_of_a_model_registered_while_waiting(infra):
    event = events_pb2.ItemDeleted(item_id=ITEM, image_ids=[IMAGE])
    await while_first_vector_holds_the_lock(infra, lambda ix: ix.item_deleted(event))
    assert await vector_rows(infra) == []


async def test_deleting_the_image_drops_its_vector_of_a_model_registered_while_waiting(infra):
    event = events_pb2.ImageDeleted(image_id=IMAGE, item_id=ITEM)
    await while_first_vector_holds_the_lock(infra, lambda ix: ix.image_deleted(event))
    assert await vector_rows(infra) == []
