"""What a search answer shows of each item (name, series, maker, year, variant), kept in
search's items table from catalog's item events so that the gateway needs no name
lookup in catalog per search. Items heard of before search kept names (rows written
by an older version) are filled in from catalog by a background pass."""

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from photosearch.common.logging import get_logger
from photosearch.common.periodic import repeat
from photosearch.events.v1 import events_pb2
from photosearch_search.catalog import CatalogReader
from photosearch_search.domain import Candidate, ItemSummary
from photosearch_search.nearest import VectorQueries

log = get_logger(__name__)

# Items asked of catalog per BatchGetItems (its limit is 1,000).
BACKFILL_BATCH = 500


def summary_of(event: events_pb2.ItemUpserted) -> ItemSummary:
    return ItemSummary(event.name, event.series, event.maker, event.year, event.variant)


async def attach(conn: AsyncConnection, candidates: list[Candidate]) -> list[Candidate]:
    """The candidates with their items' summaries, where search holds one (items it has
    not heard of keep none)."""
    cur = await conn.execute(
        "SELECT item_id, name, series_shown, maker_shown, year, variant FROM items"
        " WHERE item_id = ANY(%s::text[]) AND name IS NOT NULL",
        ([c.item_id for c in candidates],),
    )
    found = {
        str(r[0]): ItemSummary(str(r[1]), r[2] or "", r[3] or "", int(r[4] or 0), r[5] or "")
        for r in await cur.fetchall()
    }
    return [replace(c, item=found.get(c.item_id)) for c in candidates]


class SummaryReader:
    """Puts the summaries on a search's candidates, on the search pool."""

    def __init__(self, vectors: VectorQueries) -> None:
        self._vectors = vectors

    async def attach(self, candidates: list[Candidate]) -> list[Candidate]:
        if not candidates:
            return candidates
        return await self._vectors.run(lambda conn: attach(conn, candidates))


class SummaryBackfill:
    """Fills in the summaries of items search knows only by their filter attributes,
    from catalog. Safe beside the event consumer and on every replica at once: it writes
    only rows still unnamed, and any item event since carries the newer summary."""

    def __init__(
        self, pool: Callable[[], AsyncConnectionPool], catalog: CatalogReader, batch: int
    ) -> None:
        self._pool = pool
        self._catalog = catalog
        self._batch = batch

    async def run_once(self) -> int:
        """One walk over the unnamed items; the number filled in."""
        filled, after = 0, ""
        while True:
            async with self._pool().connection() as conn:
                cur = await conn.execute(
                    "SELECT item_id FROM items WHERE name IS NULL AND item_id > %s"
                    " ORDER BY item_id LIMIT %s",
                    (after, self._batch),
                )
                ids = [str(r[0]) for r in await cur.fetchall()]
            if not ids:
                break
            after = ids[-1]
            found = await self._catalog.item_summaries(ids)
            if found:
                filled += await self._store(found)
        if filled:
            log.info("summaries.backfilled", items=filled)
        return filled

    async def _store(self, found: dict[str, ItemSummary]) -> int:
        ids = list(found)
        columns = (
            ids,
            [found[i].name for i in ids],
            [found[i].series for i in ids],
            [found[i].maker for i in ids],
            [found[i].year or None for i in ids],
            [found[i].variant for i in ids],
        )
        async with self._pool().connection() as conn:
            cur = await conn.execute(
                "UPDATE items i SET name = s.name, series_shown = s.series,"
                " maker_shown = s.maker, year = s.year, variant = s.variant"
                " FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::int[],"
                " %s::text[]) AS s(item_id, name, series, maker, year, variant)"
                " WHERE i.item_id = s.item_id AND i.name IS NULL",
                columns,
            )
            return max(cur.rowcount, 0)

    def every(self, seconds: float) -> Callable[[asyncio.Event], Awaitable[None]]:
        """A background task (lifecycle.py): a walk at start, then one every `seconds`
        (cheap when nothing is unnamed: a partial index answers it)."""

        async def run(stopping: asyncio.Event) -> None:
            async def once() -> None:
                await self.run_once()

            await repeat(once, seconds, stopping, failed="summaries.backfill_failed")

        return run
