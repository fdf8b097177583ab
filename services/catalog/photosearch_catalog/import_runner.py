"""Runs import jobs: takes a few pending entries of the oldest running job (locked, so
replicas share the work), fetches their photos at once, imports them through the bulk
import (idempotent on import key and image hash) and records each entry's outcome in
the same transaction that held the lock. A crash before that commit leaves the entries
pending: the next run fetches them again, and the import adds nothing twice."""

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import httpx
import psycopg
import structlog
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from photosearch_catalog.bulk_import import ImportService
from photosearch_catalog.domain import ClaimedEntry, ImageRole, ImportImage, ImportRecord
from photosearch_catalog.import_fetch import FetchFailed, FetchLimits, S3Store, fetch_url
from photosearch_catalog.import_job_repository import ImportJobRepository

log = structlog.get_logger(__name__)
USER_AGENT = "photosearch-catalog-import/1"


@dataclass
class ImportRunner:
    pool: Callable[[], AsyncConnectionPool]
    imports: ImportService
    s3: Callable[[], S3Store]
    limits: FetchLimits
    batch: int = 8
    idle_seconds: float = 2.0
    repo: ImportJobRepository = field(default_factory=ImportJobRepository)
    _wake: asyncio.Event = field(default_factory=asyncio.Event, init=False)

    def wake(self) -> None:
        """A job was started: look now rather than at the next idle check."""
        self._wake.set()

    async def run(self, stopping: asyncio.Event) -> None:
        headers = {"User-Agent": USER_AGENT}
        async with httpx.AsyncClient(follow_redirects=False, headers=headers) as http:
            while not stopping.is_set():
                try:
                    worked = await self.step(http)
                except Exception as exc:  # the database away: the entries stay pending
                    log.warning("import_step_failed", error=str(exc))
                    worked = False
                if worked:
                    continue
                self._wake.clear()
                waits = [asyncio.ensure_future(e.wait()) for e in (stopping, self._wake)]
                await asyncio.wait(waits, timeout=self.idle_seconds, return_when="FIRST_COMPLETED")
                for waiting in waits:
                    waiting.cancel()

    async def step(self, http: httpx.AsyncClient) -> bool:
        """One batch; False when there was nothing to do."""
        async with self.pool().connection() as conn, conn.transaction():
            claimed = await self.repo.claim(conn, self.batch)
            if not claimed:
                for job_id in await self.repo.finish_jobs(conn):
                    log.info("import_job_done", job_id=job_id)
                return False
            fetched = await asyncio.gather(*(self._fetch(http, c) for c in claimed))
            failures = await self._import(claimed, fetched)
            for n, entry in enumerate(claimed):
                await self.repo.record(conn, entry, failures.get(n))
        return True

    async def _fetch(self, http: httpx.AsyncClient, entry: ClaimedEntry) -> bytes | str:
        """The photo's bytes, or why there are none."""
        location = entry.entry.location
        try:
            if location.startswith("s3://"):
                bucket, _, key = location[len("s3://") :].partition("/")
                return await self.s3().fetch(bucket, key, self.limits.max_bytes)
            return await fetch_url(http, location, self.limits)
        except FetchFailed as exc:
            return str(exc)

    async def _import(
        self, claimed: list[ClaimedEntry], fetched: list[bytes | str]
    ) -> dict[int, str]:
        """Import what was fetched, one record per item; why each failed entry failed."""
        failures = {n: data for n, data in enumerate(fetched) if isinstance(data, str)}
        groups: dict[str, list[int]] = {}
        for n, entry in enumerate(claimed):
            if n not in failures:
                groups.setdefault(entry.entry.import_key, []).append(n)
        for key, members in groups.items():
            first = claimed[members[0]]
            images = [
                ImportImage(data, claimed[n].entry.location, ImageRole.OFFICIAL)
                for n in members
                if isinstance(data := fetched[n], bytes)
            ]
            record = ImportRecord(key, first.entry.fields, images, first.update_existing)
            try:
                summary = await self.imports.import_records(_one(record))
            except (psycopg.OperationalError, PoolTimeout):
                raise  # the database: the whole batch again later
            except Exception as exc:  # this record only: say so and go on
                summary_errors = {"": f"{type(exc).__name__}: {exc}"}
            else:
                summary_errors = {e.filename: e.message for e in summary.errors}
            for n in members:
                reason = summary_errors.get(claimed[n].entry.location) or summary_errors.get("")
                if reason:
                    failures[n] = reason
        return failures


async def _one(record: ImportRecord) -> AsyncIterator[ImportRecord]:
    yield record
