"""The region index: items found by shared visual words when the fingerprint ranks them
far down, and an index that follows photos added and deleted, growth (a new codebook
version) and a second model."""

import asyncio

import numpy as np
import psycopg
from psycopg_pool import AsyncConnectionPool

from photosearch.common import subjects
from photosearch.common.local import LocalGrid, from_proto, quantise, to_proto
from photosearch.events.v1 import events_pb2
from photosearch.search.v1 import search_pb2
from photosearch_search import region_store
from photosearch_search.codebook import Bag, Codebook, bag_of
from photosearch_search.domain import Filters, Model
from photosearch_search.held_postings import HeldPostings, LoadPace, WordPostings
from tests.support.metrics import scrape
from tests.support.search import DIM, Harness, eventually, unit

LOCAL_DIM = 64
ROWS, COLS = 12, 14
# Fingerprint similarity to the query of each item, best first: the item the photo
# shows is the last one, far below the two that re-ranking takes from the fingerprint.
SIMILARITY = {"item-a": 0.9, "item-b": 0.85, "item-c": 0.8, "item-d": 0.7, "item-e": 0.6}
TARGET, TARGET_SIMILARITY = "item-shown", 0.5
FAST = {
    "rerank_top_k": 2,
    "region_candidates": 3,
    "region_min_photos": 4,
    "region_poll_seconds": 0.2,
    "metrics_sample_seconds": 0.1,
}


def cells(seed: int) -> np.ndarray:
    out = np.random.default_rng(seed).normal(size=(ROWS * COLS, LOCAL_DIM)).astype(np.float32)
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def grid(values: np.ndarray) -> events_pb2.LocalDescriptors:
    index = np.arange(ROWS * COLS, dtype=np.int32)
    return to_proto(LocalGrid(ROWS, COLS, index, quantise(values)))


def vector(similarity: float) -> np.ndarray:
    v = np.zeros(DIM, dtype=np.float32)
    v[0], v[1] = similarity, np.sqrt(1 - similarity**2)
    return v


QUERY = unit(np.eye(DIM, dtype=np.float32)[0])
SHOWN = cells(seed=100)  # what the query photo and the target's catalog photo show


def photo_of_the_target() -> events_pb2.LocalDescriptors:
    """The query: the target's regions, each a little different (another photo)."""
    noise = np.random.default_rng(7).normal(size=SHOWN.shape).astype(np.float32) * 0.05
    values = SHOWN + noise
    return grid(values / np.linalg.norm(values, axis=1, keepdims=True))


async def catalog(h: Harness, model_id: str | None = None) -> None:
    for number, (item, similarity) in enumerate(SIMILARITY.items()):
        await h.completed(
            f"img-{item}", item, vector(similarity), model_id, local=grid(cells(number))
        )
    await h.completed(
        f"img-{TARGET}", TARGET, vector(TARGET_SIMILARITY), model_id, local=grid(SHOWN)
    )


async def status(h: Harness, model_id: str = "") -> search_pb2.IndexStatusResponse:
    return await h.stub.IndexStatus(search_pb2.IndexStatusRequest(model_id=model_id), timeout=10)


async def serves(h: Harness, photos: int, model_id: str = "") -> None:
    found = await status(h, model_id)
    assert found.region_indexed == photos and found.region_words > 0, found


async def postings(h: Harness, image_id: str) -> int:
    async with await psycopg.AsyncConnection.connect(h.search.lifecycle.infra.database_url) as conn:
        cur = await conn.execute(
            "SELECT count(*) FROM region_postings WHERE image_id = %s", (image_id,)
        )
        row = await cur.fetchone()
        return int(row[0]) if row else 0


async def versions(h: Harness, model_id: str) -> list[tuple[int, bool]]:
    async with await psycopg.AsyncConnection.connect(h.search.lifecycle.infra.database_url) as conn:
        cur = await conn.execute(
            "SELECT version, ready_at IS NOT NULL FROM codebooks WHERE model_id = %s"
            " ORDER BY version",
            (model_id,),
        )
        return [(int(v), bool(r)) for v, r in await cur.fetchall()]


async def test_an_item_the_fingerprint_ranks_last_is_found_by_its_regions(start_harness):
    h = await start_harness(**FAST)
    await catalog(h)
    await eventually(lambda: serves(h, 6))
    plain = await h.search_items(QUERY, k=10)
    assert [c.item_id for c in plain.candidates][-1] == TARGET  # the fingerprint's last

    reply = await h.search_items(QUERY, k=10, local=[photo_of_the_target()])
    assert reply.reranked and reply.region_candidates >= 1
    top = reply.candidates[0]
    assert top.item_id == TARGET and top.from_regions and top.verified
    assert abs(top.global_score - TARGET_SIMILARITY) < 1e-5
    assert reply.band == search_pb2.MATCH_BAND_MATCH
    # The index's two steps are timed apart, as parts of its stage.
    took = {t.stage: t.milliseconds for t in reply.timings}
    assert [t.stage for t in reply.timings][1:4] == ["region_index", "region_words", "region_query"]
    assert 0 < took["region_words"] + took["region_query"] <= took["region_index"]

    # The postings are now held by this replica, and /metrics says how many bytes.
    async def held() -> None:
        figures = await scrape(h.search.metrics_url)
        assert figures.value("search_region_postings_bytes", model_id=h.model_id) > 0

    await eventually(held)
    # The items the fingerprint found are not marked as the region index's.
    assert not any(c.from_regions for c in reply.candidates if c.item_id in ("item-a", "item-b"))
    # Filters hold for the region index's candidates too.
    filtered = await h.search_items(
        QUERY, k=10, local=[photo_of_the_target()], filters=search_pb2.Filters(tags=["absent"])
    )
    assert list(filtered.candidates) == []

    # Its photo deleted: its postings go with its descriptors, and it is found no more.
    await h.catalog_event(
        subjects.IMAGE_DELETED, events_pb2.ImageDeleted(image_id=f"img-{TARGET}", item_id=TARGET)
    )

    async def forgotten() -> None:
        assert await postings(h, f"img-{TARGET}") == 0
        again = await h.search_items(QUERY, k=10, local=[photo_of_the_target()])
        assert TARGET not in [c.item_id for c in again.candidates]

    await eventually(forgotten)

    # A new photo showing it is indexed within a pass and found again.
    await h.completed("img-new", "item-new", vector(0.4), local=grid(SHOWN))

    async def found_again() -> None:
        assert await postings(h, "img-new") > 0
        again = await h.search_items(QUERY, k=10, local=[photo_of_the_target()])
        assert again.candidates[0].item_id == "item-new" and again.candidates[0].from_regions

    await eventually(found_again)


async def test_growth_trains_a_new_version_and_each_model_has_its_own(start_harness):
    h = await start_harness(**FAST)
    await catalog(h)
    await eventually(lambda: serves(h, 6))
    assert await versions(h, h.model_id) == [(1, True)]
    # Twice the photos: a new codebook, ready once it covers them all; the old one goes.
    for number in range(6):
        await h.completed(
            f"img-more-{number}",
            f"item-more-{number}",
            vector(0.3),
            local=grid(cells(200 + number)),
        )

    async def retrained() -> None:
        assert await versions(h, h.model_id) == [(2, True)]
        await serves(h, 12)

    await eventually(retrained, timeout=30)
    reply = await h.search_items(QUERY, k=10, local=[photo_of_the_target()])
    assert reply.candidates[0].item_id == TARGET

    # A second model's vectors and descriptors: its own codebook, its own postings.
    other = f"{h.model_id}-next"
    await h.heartbeat(other)
    await catalog(h, other)
    await eventually(lambda: serves(h, 6, other), timeout=30)
    assert await versions(h, other) == [(1, True)]
    assert await versions(h, h.model_id) == [(2, True)]
    answer = await h.search_items(QUERY, model_id=other, k=10, local=[photo_of_the_target()])
    assert answer.candidates[0].item_id == TARGET and answer.candidates[0].from_regions


async def test_the_word_query_is_never_prepared(start_harness):
    """A prepared word query soon runs Postgres's generic plan, blind to how many words
    the arrays hold: it joined every posting with every word (60x slower). Each search's
    words must be planned as they are."""
    h = await start_harness(**FAST)
    await catalog(h)
    await eventually(lambda: serves(h, 6))
    url = h.search.lifecycle.infra.database_url
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT m.model_id, m.dim, m.id, c.version FROM models m"
            " JOIN codebooks c USING (model_id) WHERE c.ready_at IS NOT NULL"
        )
        row = await cur.fetchone()
        assert row is not None
        model, version = Model(row[0], row[1], row[2]), row[3]
        bag = Bag(np.arange(20, dtype=np.int64), np.full(20, 0.2, dtype=np.float32))
        for _ in range(10):  # psycopg prepares a statement from its 5th execution
            await region_store.top_photos(conn, model, version, [bag], Filters(), 5)
        cur = await conn.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [s for (s,) in await cur.fetchall()]
    assert not [s for s in prepared if "region_postings" in s], prepared


async def test_postings_held_in_memory_answer_as_sql_and_follow_changes(start_harness):
    h = await start_harness(**FAST)
    await catalog(h)
    await eventually(lambda: serves(h, 6))
    url = h.search.lifecycle.infra.database_url
    async with AsyncConnectionPool(url, min_size=1, max_size=2, open=False) as pool:
        await pool.open()
        async with pool.connection() as conn:
            await conn.set_autocommit(True)
            model, book = await ready_codebook(conn)
            views = [bag_of(book, from_proto(photo_of_the_target())), bag_of(book, from_proto(
                grid(cells(3))))]  # fmt: skip
            by_sql = await region_store.top_photos(conn, model, book.version, views, Filters(), 9)

            held = HeldPostings(lambda: pool, max_bytes=2**20, pace=LoadPace(min_gap=0.0))
            ready = (await region_store.versions(conn, model.model_id))[0]

            async def loaded(changes: int) -> WordPostings:
                copy = held.get(model.model_id, book.version, changes, book.words)
                assert copy is not None and copy.changes == changes
                return copy

            assert held.get(model.model_id, book.version, ready.changes, book.words) is None
            first = await eventually(lambda: loaded(ready.changes))
            in_memory = first.top(views, 9)
            assert [(i, m) for i, m, _ in in_memory] == [(i, m) for i, m, _ in by_sql]
            assert np.allclose([s for *_, s in in_memory], [s for *_, s in by_sql])
            # The second view is item-d's own photo: it and the target lead.
            assert {item for item, *_ in in_memory[:2]} == {TARGET, "item-d"}

            # A new photo's postings move the version's counter; the next copy has them.
            await h.completed("img-held", "item-held", vector(0.4), local=grid(SHOWN))

            async def moved() -> int:
                now = (await region_store.versions(conn, model.model_id))[0]
                assert now.version == book.version and now.changes > ready.changes
                assert await postings(h, "img-held") > 0
                return now.changes

            changes = await eventually(moved)
            # Until it is read again, the last copy serves.
            assert held.get(model.model_id, book.version, changes, book.words) is first
            fresh = await eventually(lambda: loaded(changes))
            assert "img-held" in [image for _, image, _ in fresh.top(views, 9)]

            # Postings that do not fit are queried in SQL: nothing is held.
            small = HeldPostings(lambda: pool, max_bytes=64, pace=LoadPace(min_gap=0.0))
            assert small.get(model.model_id, book.version, changes, book.words) is None
            await asyncio.sleep(0.5)
            assert small.get(model.model_id, book.version, changes, book.words) is None
            held.close()
            small.close()


async def ready_codebook(conn: psycopg.AsyncConnection) -> tuple[Model, Codebook]:
    cur = await conn.execute(
        "SELECT m.model_id, m.dim, m.id, c.version FROM models m"
        " JOIN codebooks c USING (model_id) WHERE c.ready_at IS NOT NULL"
    )
    row = await cur.fetchone()
    assert row is not None
    model = Model(row[0], row[1], row[2])
    book = await region_store.load(conn, model.model_id, row[3])
    assert book is not None
    return model, book
