"""The read pool's connections follow the ef_search the index size asks for, setting it
only when it changes, on a real Postgres + pgvector."""

import numpy as np
import pytest
from psycopg import AsyncConnection

from photosearch.common.db import apply_migrations
from photosearch_search import ef_search
from photosearch_search.domain import Filters, Model
from photosearch_search.models import IndexParams, table_ddl
from photosearch_search.nearest import ScanSettings, VectorQueries

MODEL = Model("test/ef@1", 8, 1)


async def add_rows(url: str, start: int, count: int) -> None:
    rng = np.random.default_rng(start)
    async with await AsyncConnection.connect(url, autocommit=True) as conn:
        async with conn.cursor().copy(
            f"COPY {MODEL.table} (image_id, variant, item_id, embedding) FROM STDIN"
        ) as copy:
            for n in range(start, start + count):
                vector = "[" + ",".join(f"{v:.4f}" for v in rng.normal(size=MODEL.dim)) + "]"
                await copy.write_row((f"image-{n}", "", f"item-{n}", vector))
        await conn.execute(f"ANALYZE {MODEL.table}")


async def test_a_growing_index_widens_the_search(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ef_search, "REFRESH_SECONDS", 0.0)  # read the estimate every time
    await apply_migrations(database_url, "photosearch_search.migrations")
    async with await AsyncConnection.connect(database_url, autocommit=True) as conn:
        await conn.execute(table_ddl(MODEL, IndexParams(16, 64, "64MB", 0)))
    await add_rows(database_url, 0, 400)
    # 1000 at a million rows: 20 at 400 rows, 50 at 2,500 (floor 10).
    policy = ef_search.EfSearchPolicy(floor=10, per_million=1000)
    queries = VectorQueries(ScanSettings(policy, 1000), size=1)
    await queries.open(database_url)
    query = np.ones(MODEL.dim, dtype=np.float32) / np.sqrt(MODEL.dim)

    async def search_then_show(conn: AsyncConnection) -> tuple[int, str]:
        hits = await queries.nearest(conn, MODEL, query, Filters(), 5)
        cur = await conn.execute("SHOW hnsw.ef_search")
        row = await cur.fetchone()
        assert row is not None
        return len(hits), str(row[0])

    try:
        assert await queries.run(search_then_show) == (5, "20")
        await add_rows(database_url, 400, 2100)
        assert await queries.run(search_then_show) == (5, "50")
    finally:
        await queries.close()
