"""Nearest-neighbour lookup, all of it: the search pool (connections carrying the HNSW
settings), the SQL of nearest vectors (HNSW or exact), and the rule that widens an index
scan until it has found k items, or compares every vector when that loses nothing."""

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import psycopg
from pgvector.psycopg import register_vector_async
from psycopg import AsyncConnection, sql
from psycopg_pool import AsyncConnectionPool

from photosearch.common.logging import get_logger
from photosearch_search.domain import (
    Filters,
    ImageHit,
    Model,
    SearchLimits,
    SearchQuery,
    SearchResult,
    Vector,
)
from photosearch_search.ef_search import EfSearchPolicy, EfSearchTracker
from photosearch_search.vectors import best_per_item

log = get_logger(__name__)
T = TypeVar("T")

# Image rows fetched per wanted item at first: items may have several images/variants.
ROWS_PER_ITEM = 4
MIN_ROWS = 40


def filter_clause(
    filters: Filters, items: Sequence[str] | None = None
) -> tuple[sql.Composable, dict[str, object]]:
    """The WHERE clause (or nothing) of a model's vector table for these filters, and
    for these items only when `items` is given; with its parameters."""
    clauses: list[sql.Composable] = []
    params: dict[str, object] = {}
    if items is not None:
        clauses.append(sql.SQL("item_id = ANY(%(items)s::text[])"))
        params["items"] = list(items)
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

    async def nearest(
        self, conn: AsyncConnection, model: Model, vector: Vector, filters: Filters, limit: int
    ) -> list[ImageHit]:
        """Approximate nearest vectors through the model's HNSW index."""
        await self._ef_search.apply(conn, model.table)
        where, params = filter_clause(filters)
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
        where, params = filter_clause(filters)
        query = sql.SQL(
            "SELECT item_id, image_id, distance FROM ("
            " SELECT DISTINCT ON (item_id) item_id, image_id, embedding <=> %(q)b AS distance"
            " FROM {t}{where} ORDER BY item_id, distance, image_id) best"
            " ORDER BY distance, item_id LIMIT %(k)s"
        ).format(t=sql.Identifier(model.table), where=where)
        cur = await conn.execute(query, {**params, "q": vector, "k": k})
        return [ImageHit(str(r[0]), str(r[1]), float(r[2])) for r in await cur.fetchall()]

    async def best_of_items(
        self,
        conn: AsyncConnection,
        model: Model,
        vector: Vector,
        filters: Filters,
        items: Sequence[str],
    ) -> list[ImageHit]:
        """Each named item's best image, for the items that pass the filters (the
        region index's candidates, which the fingerprint did not rank near)."""
        where, params = filter_clause(filters, items)
        query = sql.SQL(
            "SELECT DISTINCT ON (item_id) item_id, image_id, embedding <=> %(q)b AS distance"
            " FROM {t}{where} ORDER BY item_id, distance, image_id"
        ).format(t=sql.Identifier(model.table), where=where)
        cur = await conn.execute(query, {**params, "q": vector})
        return [ImageHit(str(r[0]), str(r[1]), float(r[2])) for r in await cur.fetchall()]

    async def count_matching(
        self, conn: AsyncConnection, model: Model, filters: Filters, cap: int
    ) -> int:
        """Vectors passing the filters, counted up to `cap` (cheap on a broad filter)."""
        where, params = filter_clause(filters)
        query = sql.SQL("SELECT count(*) FROM (SELECT 1 FROM {t}{where} LIMIT %(cap)s) s").format(
            t=sql.Identifier(model.table), where=where
        )
        cur = await conn.execute(query, {**params, "cap": cap})
        row = await cur.fetchone()
        return int(row[0]) if row else 0


class NearestItems:
    """The k items nearest the query, each scored by its best image."""

    def __init__(self, vectors: VectorQueries, limits: SearchLimits) -> None:
        self._vectors = vectors
        self._limits = limits

    async def search(self, query: SearchQuery) -> SearchResult:
        return await self._vectors.run(lambda conn: self.find(conn, query))

    async def find(self, conn: AsyncConnection, query: SearchQuery) -> SearchResult:
        """On the caller's search-pool connection (`VectorQueries.run`)."""
        model, filters = query.model, query.filters
        if filters:
            cap = self._limits.exact_max_rows + 1
            if await self._vectors.count_matching(conn, model, filters, cap) < cap:
                return await self._exact(conn, query)
        limit = max(query.k * ROWS_PER_ITEM, MIN_ROWS)
        while True:
            hits = await self._vectors.nearest(conn, model, query.vector, filters, limit)
            if len(hits) < limit:
                # The index ran out of candidates before LIMIT: either few vectors
                # match at all, or the scan gave up. Comparing them all loses nothing.
                return await self._exact(conn, query)
            if len({h.item_id for h in hits}) >= query.k or limit >= self._limits.max_scan_rows:
                break
            limit = min(limit * 4, self._limits.max_scan_rows)
        return SearchResult(model.model_id, best_per_item(hits, query.k, query.min_score))

    async def _exact(self, conn: AsyncConnection, query: SearchQuery) -> SearchResult:
        hits = await self._vectors.exact_best_per_item(
            conn, query.model, query.vector, query.filters, query.k
        )
        return SearchResult(
            query.model.model_id, best_per_item(hits, query.k, query.min_score), exact=True
        )
