"""Hashes images for the copy report, off the request path: hashing all 44 views costs
~20-30 ms of CPU per photo, 16x what storing it costs, so an add or an import returns
without waiting and this worker hashes what they stored a moment later.

Nothing is lost if the process dies first: at start, and every `recheck_seconds`, it also
hashes every image that has no hash of the current scheme (stored before hashing existed,
by an older scheme version, or by a replica that stopped before hashing it)."""

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog
from psycopg_pool import AsyncConnectionPool

from photosearch.common.errors import InvalidArgument
from photosearch_catalog.copy_hash import SCHEME_VERSION, hash_image
from photosearch_catalog.domain import CopyHash
from photosearch_catalog.intake import ImageLimits
from photosearch_catalog.repository import CatalogRepository
from photosearch_catalog.storage import ImageStore

log = structlog.get_logger(__name__)
BATCH = 32


@dataclass
class CopyHasher:
    pool: Callable[[], AsyncConnectionPool]
    store: ImageStore
    limits: ImageLimits
    recheck_seconds: float = 300.0
    repo: CatalogRepository = field(default_factory=CatalogRepository)
    _wanted: list[str] = field(default_factory=list, init=False)
    _wake: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    # Images this process could not decode: logged once, not retried until restart.
    _failed: set[str] = field(default_factory=set, init=False)

    def want(self, image_ids: list[str]) -> None:
        """Images just committed: hash them soon (called by the service, after commit)."""
        self._wanted.extend(image_ids)
        self._wake.set()

    async def run(self, stopping: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        next_scan = loop.time()  # at start: whatever is missing
        while not stopping.is_set():
            try:
                if loop.time() >= next_scan:
                    next_scan = loop.time() + self.recheck_seconds
                    hashed = await self.scan(stopping)
                    if hashed:
                        log.info("copy_hash.backfilled", images=hashed)
                await self._hash_wanted(stopping)
            except Exception:  # the database may be restarting: the next scan catches up
                log.warning("copy_hash.failed", exc_info=True)
            await self._sleep(stopping, max(0.0, next_scan - loop.time()))

    async def scan(self, stopping: asyncio.Event | None = None) -> int:
        """Hash every image missing a current hash (until `stopping`); how many."""
        hashed = 0
        while stopping is None or not stopping.is_set():
            async with self.pool().connection() as conn:
                wanted = BATCH + len(self._failed)
                ids = await self.repo.unhashed_images(conn, SCHEME_VERSION, wanted)
            ids = [i for i in ids if i not in self._failed][:BATCH]
            if not ids:
                break
            hashed += await self._hash_batch(ids)
        return hashed

    async def _hash_wanted(self, stopping: asyncio.Event) -> None:
        while self._wanted and not stopping.is_set():
            batch, self._wanted = self._wanted[:BATCH], self._wanted[BATCH:]
            await self._hash_batch(batch)

    async def _hash_batch(self, image_ids: list[str]) -> int:
        results = [(i, await self._hash(i)) for i in image_ids]
        done = [(i, h) for i, h in results if h is not None]
        async with self.pool().connection() as conn:
            await self.repo.put_copy_hashes(conn, done)
        return len(done)

    async def _sleep(self, stopping: asyncio.Event, seconds: float) -> None:
        if self._wanted:
            return
        self._wake.clear()
        waits = [asyncio.ensure_future(e.wait()) for e in (stopping, self._wake)]
        try:
            await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()

    async def _hash(self, image_id: str) -> CopyHash | None:
        data = await self.store.get(image_id)
        if data is None:
            return None  # deleted meanwhile; its hash row would go with it
        try:
            return await asyncio.to_thread(
                hash_image, data, self.limits.max_bytes, self.limits.max_pixels
            )
        except InvalidArgument as exc:
            self._failed.add(image_id)
            log.warning("copy_hash.unreadable", image_id=image_id, reason=str(exc))
            return None
