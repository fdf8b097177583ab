"""SQL of the read side: nearest vectors (HNSW or exact), counts for the index status."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import psycopg
from pgvector.psycopg import register_vector_async
from psycopg import AsyncConnection, sql
from psycopg_pool import AsyncConnectionPool

from photosearch.common.logging import get_logger
from photosearch_search.domain import Failure, Filters, ImageHit, Model, Vector
from photosearch_search.ef_search import EfSearchPolicy, EfSearchTracker

log = get_logger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class ScanSettings:
    ef_search: EfSearchPolicy
    max_scan_tuples: int

    def statements(self) -> list[str]:
        # relaxed_order: with filters the scan goes on until it has found LIMIT rows
        # instead of stopping at ef_search candidates; results are re-sorted afterwards.
        return [
            f"SET hnsw.ef_search = {int(self.ef_search.floor)}",
            "SET hnsw.iterative_scan = relaxed_order",
            f"SET hnsw.max_scan_tuples = {int(self.max_scan_tuples)}",
        ]


class VectorQueries:
    """Queries over the vector tables, on a pool of their own: its connections carry the
    HNSW session settings from the start, and are not pinged before every query (a
    broken one fails its query, is replaced, and `run` repeats the query on a working
    one), which keeps a round trip off each search."""

    def __init__(self, scan: ScanSettings, size: int) -> None:
        self._scan = scan
        self._size = size
        self._ef_search = EfSearchTracker(scan.ef_search)
        self._pool: AsyncConnectionPool | None = None

    async def open(self, url: str) -> None:
        if self._pool is not None:
            return

        async def configure(conn: AsyncConnection) -> None:
            await register_vector_async(conn)
            await conn.set_autocommit(True)
            for statement in self._scan.statements():
                await conn.execute(statement)  # type: ignore[arg-type]
            self._ef_search.configured(conn)

        pool = AsyncConnectionPool(
            url,
            min_size=self._size,
            max_size=self._size,
            open=False,
            configure=configure,
            timeout=5.0,
            reconnect_timeout=0,  # keep trying while Postgres is away
        )
        try:
            await pool.open(wait=True, timeout=10.0)
        except Exception:
            await pool.close()  # start() is retried: leave nothing running behind
            raise
        self._pool = pool

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    def _require_pool(self) -> AsyncConnectionPool:
        if self._pool is None:
            raise RuntimeError("search pool used before open()")
        return self._pool

    async def run(self, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        """`work` (read-only, so safe to repeat) on a pooled connection. Connections are
        not checked before use: when one turns out broken (e.g. Postgres restarted since
        it was last used), the idle ones are checked, the broken ones replaced, and
        `work` runs once more on a working connection. Healthy searches pay nothing."""
        pool = self._require_pool()
        async with pool.connection() as conn:
            try:
                return await work(conn)
            except psycopg.OperationalError as exc:
                if not conn.broken:  # e.g. a cancelled statement: the connection is fine
                    raise
                log.warning("search.connection_lost", error=str(exc).strip())
        await pool.check()  # the others idle since the restart are broken too
        async with pool.connection() as conn:
            return await work(conn)

    @staticmethod
    def _where(filters: Filters) -> tuple[sql.Composable, dict[str, object]]:
        clauses: list[sql.Composable] = []
        params: dict[str, object] = {}
        if filters.series:
            clauses.append(sql.SQL("series = ANY(%(series)s::text[])"))
            params["series"] = list(filters.series)
        if filters.makers:
            clauses.append(sql.SQL("maker = ANY(%(makers)s::text[])"))
            params["makers"] = list(filters.makers)
        if filters.tags:
            clauses.append(sql.SQL("tags @> %(tags)s::text[]"))
            params["tags"] = list(filters.tags)
        if not clauses:
            return sql.SQL(""), params
        return sql.SQL(" WHERE ") + sql.SQL(" AND ").join(clauses), params

    async def nearest(
        self, conn: AsyncConnection, model: Model, vector: Vector, filters: Filters, limit: int
    ) -> list[ImageHit]:
        """Approximate nearest vectors through the model's HNSW index."""
        await self._ef_search.apply(conn, model.table)
        where, params = self._where(filters)
        query = sql.SQL(
            "SELECT item_id, image_id, embedding <=> %(q)b AS distance FROM {t}{where}"
            " ORDER BY distance LIMIT %(limit)s"
        ).format(t=sql.Identifier(model.table), where=where)
        cur = await conn.execute(query, {**params, "q": vector, "limit": limit})
        return [ImageHit(str(r[0]), str(r[1]), float(r[2])) for r in await cur.fetchall()]

    async def exact_best_per_item(
        self, conn: AsyncConnection, model: Model, vector: Vector, filters: Filters, k: int
    ) -> list[ImageHit]:
        """Every matching vector compared; each item's best image, best k items first.
        (Its own SQL text: a plan prepared for the index query can never be reused here.)"""
        where, params = self._where(filters)
        query = sql.SQL(
            "SELECT item_id, image_id, distance FROM ("
            " SELECT DISTINCT ON (item_id) item_id, image_id, embedding <=> %(q)b AS distance"
            " FROM {t}{where} ORDER BY item_id, distance, image_id) best"
            " ORDER BY distance, item_id LIMIT %(k)s"
        ).format(t=sql.Identifier(model.table), where=where)
        cur = await conn.execute(query, {**params, "q": vector, "k": k})
        return [ImageHit(str(r[0]), str(r[1]), float(r[2])) for r in await cur.fetchall()]

    async def count_matching(
        self, conn: AsyncConnection, model: Model, filters: Filters, cap: int
    ) -> int:
        """Vectors passing the filters, counted up to `cap` (cheap on a broad filter)."""
        where, params = self._where(filters)
        query = sql.SQL("SELECT count(*) FROM (SELECT 1 FROM {t}{where} LIMIT %(cap)s) s").format(
            t=sql.Identifier(model.table), where=where
        )
        cur = await conn.execute(query, {**params, "cap": cap})
        row = await cur.fetchone()
        return int(row[0]) if row else 0


async def embedded_images(conn: AsyncConnection, model: Model) -> int:
    cur = await conn.execute(
        sql.SQL("SELECT count(*) FROM (SELECT DISTINCT image_id FROM {t}) s").format(
            t=sql.Identifier(model.table)
        )
    )
    row = await cur.fetchone()
    return int(row[0]) if row else 0


async def failures(conn: AsyncConnection, model_id: str, limit: int) -> tuple[int, list[Failure]]:
    cur = await conn.execute("SELECT count(*) FROM embed_failures WHERE model_id = %s", (model_id,))
    row = await cur.fetchone()
    total = int(row[0]) if row else 0
    cur = await conn.execute(
        "SELECT image_id, item_id, reason FROM embed_failures WHERE model_id = %s"
        " ORDER BY failed_at DESC, image_id LIMIT %s",
        (model_id, limit),
    )
    return total, [Failure(str(r[0]), str(r[1]), str(r[2])) for r in await cur.fetchall()]


async def outstanding_jobs(conn: AsyncConnection, model_id: str, rebuild_only: bool) -> int:
    query = "SELECT count(*) FROM embed_requests WHERE model_id = %s"
    if rebuild_only:
        query += " AND rebuild_id IS NOT NULL"
    cur = await conn.execute(query, (model_id,))  # type: ignore[arg-type]
    row = await cur.fetchone()
    return int(row[0]) if row else 0
