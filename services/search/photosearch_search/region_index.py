"""The region index: the second source of candidates. Items whose stored photos share
the most distinctive visual words with the query's views are verified too, however
far down the fingerprint ranks them (docs/quality.md: candidate recall).

`RegionIndex` answers searches with the newest ready codebook of a model (cached, as
codebooks never change once stored). `RegionMaintainer` keeps every model's index
whole in the background: it trains a codebook once the model has enough photos and a
new version whenever their number has grown `retrain_growth` times, gives every photo
its postings under each version, and switches searches to a version once it covers
every photo. Photos stored since are given their postings by the next pass, seconds
later (descriptors stored again lose their old postings: local_store.py); deleting
descriptors deletes their postings (foreign key)."""

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace
from typing import Protocol, TypeVar

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from photosearch.common.clock import elapsed_ms
from photosearch.common.local import LocalGrid
from photosearch.common.logging import get_logger
from photosearch.common.periodic import sleep_unless
from photosearch_search import region_store
from photosearch_search.codebook import Bag, Codebook, CodebookRule, bag_of, train
from photosearch_search.domain import Filters, Model
from photosearch_search.held_postings import HeldPostings, WordPostings
from photosearch_search.models import ModelRegistry

log = get_logger(__name__)
CATCH_UP_BATCH = 500  # photos given their postings per transaction
T = TypeVar("T")


@dataclass(frozen=True)
class RegionSettings:
    candidates: int = 5  # items the region index adds to the fingerprint's (0: off)
    min_photos: int = 10  # photos a model needs before its first codebook
    retrain_growth: float = 2.0  # photos grown this many times over: a new codebook
    max_training_photos: int = 20000
    rule: CodebookRule = field(default_factory=CodebookRule)


class Codebooks:
    """Codebooks read once per (model, version); which version is ready, rechecked
    every `refresh` seconds."""

    def __init__(self, refresh: float = 5.0) -> None:
        self._refresh = refresh
        self._books: dict[tuple[str, int], Codebook] = {}
        # model: (when checked, versions, the ready one, its postings' change counter)
        self._checked: dict[str, tuple[float, list[int], int | None, int]] = {}

    async def _versions(self, conn: AsyncConnection, model_id: str) -> tuple[list[int], int | None]:
        seen = self._checked.get(model_id)
        if seen is not None and time.monotonic() - seen[0] < self._refresh:
            return seen[1], seen[2]
        found = await region_store.versions(conn, model_id)
        ready = next((v for v in found if v.ready), None)
        versions = [v.version for v in found]
        self._checked[model_id] = (
            time.monotonic(),
            versions,
            None if ready is None else ready.version,
            0 if ready is None else ready.changes,
        )
        return versions, None if ready is None else ready.version

    def changes(self, model_id: str) -> int:
        """How often the ready version's postings had changed when last checked."""
        seen = self._checked.get(model_id)
        return seen[3] if seen is not None else 0

    async def book(self, conn: AsyncConnection, model_id: str, version: int) -> Codebook | None:
        key = (model_id, version)
        if key not in self._books:
            loaded = await region_store.load(conn, model_id, version)
            if loaded is None:
                return None
            self._books[key] = loaded
        return self._books[key]

    async def ready(self, conn: AsyncConnection, model_id: str) -> Codebook | None:
        _, version = await self._versions(conn, model_id)
        return None if version is None else await self.book(conn, model_id, version)

    def forget(self, model_id: str) -> None:
        self._checked.pop(model_id, None)


@dataclass(frozen=True)
class RegionHit:
    item_id: str
    image_id: str
    score: float


@dataclass(frozen=True)
class RegionLookup:
    """The region index's items for one search, and its two steps' times (stage, ms):
    the views' visual words (`region_words`) and the SQL word query (`region_query`)."""

    hits: list[RegionHit]
    timings: tuple[tuple[str, float], ...] = ()


class Runner(Protocol):
    """Runs CPU work off the event loop (the search's worker threads)."""

    def __call__(self, work: Callable[[], T]) -> Awaitable[T]: ...


class RegionIndex:
    def __init__(
        self, codebooks: Codebooks, settings: RegionSettings, held: HeldPostings | None = None
    ) -> None:
        self._codebooks = codebooks
        self._settings = settings
        self._held = held

    def close(self) -> None:
        if self._held is not None:
            self._held.close()

    @property
    def enabled(self) -> bool:
        return self._settings.candidates > 0

    @property
    def limit(self) -> int:
        """Items a search takes from the region index beyond the fingerprint's."""
        return self._settings.candidates

    async def items(
        self,
        conn: AsyncConnection,
        model: Model,
        views: Sequence[LocalGrid],
        filters: Filters,
        run: Runner,
        limit: int,
    ) -> RegionLookup:
        """The best `limit` items by their photos' shared words with any view (best
        photo per item); none while the model has no ready codebook. `run` computes
        the views' words, and the word query where the postings are held, off the
        event loop."""
        if not self.enabled or not views or limit <= 0:
            return RegionLookup([])
        book = await self._codebooks.ready(conn, model.model_id)
        if book is None:
            return RegionLookup([])
        held = None
        if self._held is not None and not filters:
            changes = self._codebooks.changes(model.model_id)
            held = self._held.get(model.model_id, book.version, changes, book.words)
        # Photos, not items, come back: a few extra so that items with several photos
        # still fill `limit` distinct items.
        photos = limit * 3
        words = _words_then_photos(book, views, held, photos)
        bags, rows, timings = await run(words)
        if rows is None:
            started = time.perf_counter()
            rows = await region_store.top_photos(conn, model, book.version, bags, filters, photos)
            timings = (*timings, ("region_query", elapsed_ms(started)))
        best: dict[str, RegionHit] = {}
        for item_id, image_id, score in rows:
            if item_id not in best:
                best[item_id] = RegionHit(item_id, image_id, score)
        return RegionLookup(list(best.values())[:limit], timings)


Timings = tuple[tuple[str, float], ...]


def _words_then_photos(
    book: Codebook, views: Sequence[LocalGrid], held: WordPostings | None, limit: int
) -> Callable[[], tuple[list[Bag], list[tuple[str, str, float]] | None, Timings]]:
    """The views' words, and their best photos where the postings are held (else
    None: the caller asks SQL), each step timed."""

    def work() -> tuple[list[Bag], list[tuple[str, str, float]] | None, Timings]:
        started = time.perf_counter()
        bags = [bag_of(book, view) for view in views]
        timings: Timings = (("region_words", elapsed_ms(started)),)
        if held is None:
            return bags, None, timings
        started = time.perf_counter()
        rows = held.top(bags, limit)
        return bags, rows, (*timings, ("region_query", elapsed_ms(started)))

    return work


def _lock_key(model_id: str) -> int:
    digest = hashlib.sha256(f"region-index:{model_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class RegionMaintainer:
    def __init__(
        self,
        pool: Callable[[], AsyncConnectionPool],
        codebooks: Codebooks,
        settings: RegionSettings,
        executor: Executor | None = None,
    ) -> None:
        self._pool = pool
        self._codebooks = codebooks
        self._settings = settings
        self._executor = executor

    def every(
        self, registry: ModelRegistry, seconds: float
    ) -> Callable[[asyncio.Event], Awaitable[None]]:
        """A background task (lifecycle.py) that maintains every model's index."""

        async def run(stopping: asyncio.Event) -> None:
            while not stopping.is_set():
                for model in await registry.all():
                    try:
                        await self.maintain(model)
                    except Exception as exc:  # e.g. Postgres away: the next pass retries
                        log.warning(
                            "regions.maintain_failed", model_id=model.model_id, error=str(exc)
                        )
                await sleep_unless(stopping, seconds)

        return run

    async def maintain(self, model: Model) -> None:
        """One pass for one model; several replicas may call it, one does the work."""
        async with self._pool().connection() as conn:
            await conn.set_autocommit(True)
            key = _lock_key(model.model_id)
            cur = await conn.execute("SELECT pg_try_advisory_lock(%s)", (key,))
            row = await cur.fetchone()
            if not (row and row[0]):
                return
            try:
                await self._train_if_due(conn, model)
                await self._catch_up(conn, model)
            finally:
                await conn.execute("SELECT pg_advisory_unlock(%s)", (key,))

    async def _train_if_due(self, conn: AsyncConnection, model: Model) -> None:
        settings = self._settings
        photos = await region_store.stored_photos(conn, model.model_id)
        found = await region_store.versions(conn, model.model_id)
        newest = found[0] if found else None
        if photos < max(settings.min_photos, 1):
            return
        if newest is not None and photos < settings.retrain_growth * newest.trained_photos:
            return
        grids = await region_store.training_grids(
            conn, model.model_id, settings.max_training_photos
        )
        version = newest.version + 1 if newest else 1
        started = time.monotonic()
        loop = asyncio.get_running_loop()
        book = await loop.run_in_executor(self._executor, train, grids, settings.rule, version)
        book = replace(book, photos=photos)
        async with conn.transaction():
            await region_store.save(conn, model.model_id, book)
        self._codebooks.forget(model.model_id)
        log.info(
            "regions.codebook_trained",
            model_id=model.model_id,
            version=version,
            words=book.words,
            photos=photos,
            seconds=round(time.monotonic() - started, 1),
        )

    async def _catch_up(self, conn: AsyncConnection, model: Model) -> None:
        """Postings for the photos each version lacks, newest version first; the
        newest is ready (searches switch to it, older versions go) once it lacks none."""
        found = await region_store.versions(conn, model.model_id)
        for entry in found:
            book = await self._codebooks.book(conn, model.model_id, entry.version)
            if book is None:
                continue
            while lacking := await region_store.photos_lacking(
                conn, model.model_id, entry.version, CATCH_UP_BATCH
            ):
                bags = await self._bags(book, [grid for _, grid in lacking])
                refs = [ref for ref, _ in lacking]
                async with conn.transaction():
                    await region_store.add_postings(
                        conn, model.model_id, entry.version, list(zip(refs, bags, strict=True))
                    )
            if entry is found[0] and not entry.ready:
                async with conn.transaction():
                    await region_store.mark_ready(conn, model.model_id, entry.version)
                self._codebooks.forget(model.model_id)
                log.info("regions.ready", model_id=model.model_id, version=entry.version)
                return  # the older versions are gone

    async def _bags(self, book: Codebook, grids: Sequence[LocalGrid]) -> list[Bag]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._executor, lambda: [bag_of(book, grid) for grid in grids]
        )
