"""Rebuild: walk every catalog image and queue an embed job for those a model lacks.

Only one walk per model runs at a time (across replicas: a row in `rebuilds` with a
heartbeat), and images whose job is still waiting are not queued again."""

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection

from photosearch.common.errors import FailedPrecondition
from photosearch.common.infra import Infra
from photosearch.common.logging import get_logger
from photosearch_search import coverage
from photosearch_search.catalog import CatalogReader
from photosearch_search.domain import ImageRef, RebuildOutcome
from photosearch_search.jobs import EmbedJobQueue
from photosearch_search.models import ModelRegistry
from photosearch_search.workers import WorkerDirectory

log = get_logger(__name__)

# A walk that has not reported progress for this long died with its replica.
WALK_STALE_SECONDS = 60.0
# A job answered a moment ago may still be on its way back: not yet "lost".
JOB_GRACE_SECONDS = 60.0


def plan_batch(
    refs: list[ImageRef],
    states: dict[str, coverage.ImageState],
    retry_failed: bool,
    queue_busy: bool,
) -> tuple[list[ImageRef], int]:
    """The images of one batch that need a job, and how many already have one waiting."""
    todo: list[ImageRef] = []
    waiting = 0
    for ref in refs:
        state = states[ref.image_id]
        if state.deleted or state.embedded or (state.failed and not retry_failed):
            continue
        if state.queued_age is not None and (queue_busy or state.queued_age < JOB_GRACE_SECONDS):
            waiting += 1
            continue
        todo.append(ref)
    return todo, waiting


async def walk_running(conn: AsyncConnection[Any], model_id: str) -> bool:
    """A replica is walking the catalog for this model (and has reported lately)."""
    cur = await conn.execute(
        "SELECT EXISTS (SELECT 1 FROM rebuilds WHERE model_id = %s AND finished_at IS NULL"
        " AND heartbeat_at > now() - make_interval(secs => %s))",
        (model_id, WALK_STALE_SECONDS),
    )
    row = await cur.fetchone()
    return bool(row and row[0])


@dataclass
class Progress:
    queued: int = 0
    already_queued: int = 0


class Rebuilder:
    def __init__(
        self,
        infra: Infra,
        catalog: CatalogReader,
        registry: ModelRegistry,
        queue: EmbedJobQueue,
        workers: WorkerDirectory,
        *,
        batch_size: int,
        wait_seconds: float,
    ) -> None:
        self._infra = infra
        self._catalog = catalog
        self._registry = registry
        self._queue = queue
        self._workers = workers
        self._batch_size = batch_size
        self._wait = wait_seconds
        self._walks: dict[str, asyncio.Task[Progress]] = {}

    async def rebuild(self, model_id: str, *, retry_failed: bool) -> RebuildOutcome:
        online = WorkerDirectory.for_model(await self._workers.online(), model_id)
        if not online:
            raise FailedPrecondition(
                f"no embed-capable worker for model {model_id!r} is online, so nothing would "
                "process the jobs: start an embedder for this model, then rebuild"
            )
        if online[0].dim > 0:
            await self._registry.ensure(model_id, online[0].dim)
        rebuild_id = uuid.uuid4().hex[:16]
        if not await self._claim(model_id, rebuild_id):
            log.info("rebuild.already_running", model_id=model_id)
            return RebuildOutcome(model_id, 0, 0, in_progress=True)
        progress = Progress()
        task = asyncio.create_task(self._walk(model_id, rebuild_id, retry_failed, progress))
        # A walk that outlives its call reports failures through the log and the status.
        task.add_done_callback(lambda t: t.cancelled() or t.exception())
        self._walks[model_id] = task
        try:
            await asyncio.wait_for(asyncio.shield(task), self._wait)
        except TimeoutError:
            return RebuildOutcome(model_id, progress.queued, progress.already_queued, True)
        return RebuildOutcome(model_id, progress.queued, progress.already_queued, False)

    async def stop(self) -> None:
        for task in self._walks.values():
            task.cancel()
        await asyncio.gather(*self._walks.values(), return_exceptions=True)

    async def _claim(self, model_id: str, rebuild_id: str) -> bool:
        async with self._infra.require_pool().connection() as conn:
            cur = await conn.execute(
                "INSERT INTO rebuilds (model_id, rebuild_id) VALUES (%s, %s)"
                " ON CONFLICT (model_id) DO UPDATE SET rebuild_id = EXCLUDED.rebuild_id,"
                " started_at = now(), heartbeat_at = now(), finished_at = NULL, queued = 0,"
                " error = NULL WHERE rebuilds.finished_at IS NOT NULL"
                " OR rebuilds.heartbeat_at < now() - make_interval(secs => %s)"
                " RETURNING rebuild_id",
                (model_id, rebuild_id, WALK_STALE_SECONDS),
            )
            return await cur.fetchone() is not None

    async def _report(
        self, model_id: str, rebuild_id: str, queued: int, *, done: bool, error: str | None = None
    ) -> None:
        async with self._infra.require_pool().connection() as conn:
            await conn.execute(
                "UPDATE rebuilds SET heartbeat_at = now(), queued = %s, error = %s,"
                " finished_at = CASE WHEN %s THEN now() END"
                " WHERE model_id = %s AND rebuild_id = %s",
                (queued, error, done, model_id, rebuild_id),
            )

    async def _walk(
        self, model_id: str, rebuild_id: str, retry_failed: bool, progress: Progress
    ) -> Progress:
        log.info("rebuild.started", model_id=model_id, rebuild_id=rebuild_id)
        try:
            model = await self._registry.get(model_id)
            # Jobs still in the queue will be answered; with an empty queue, an unanswered
            # job was lost (e.g. the stream was purged) and is queued again.
            queue_busy = await self._queue.depth(model_id) > 0
            async for refs in self._catalog.image_refs(self._batch_size):
                async with self._infra.require_pool().connection() as conn:
                    states = await coverage.image_states(
                        conn, model, model_id, [r.image_id for r in refs]
                    )
                todo, waiting = plan_batch(refs, states, retry_failed, queue_busy)
                progress.already_queued += waiting
                await self._queue.publish(model_id, todo, attempt=rebuild_id)
                async with self._infra.require_pool().connection() as conn:
                    await coverage.record_jobs(conn, model_id, todo, rebuild_id)
                progress.queued += len(todo)
                await self._report(model_id, rebuild_id, progress.queued, done=False)
        except BaseException as exc:
            await asyncio.shield(
                self._report(model_id, rebuild_id, progress.queued, done=True, error=str(exc))
            )
            log.warning("rebuild.failed", model_id=model_id, error=str(exc))
            raise
        await self._report(model_id, rebuild_id, progress.queued, done=True)
        log.info(
            "rebuild.finished",
            model_id=model_id,
            queued=progress.queued,
            already_queued=progress.already_queued,
        )
        return progress
