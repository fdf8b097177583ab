"""Background work of the search service around its connections: the two event
consumers and the worker watch, which registers the models workers announce and, while
no model is active, adopts the model of the first embedder that comes online."""

import asyncio
from collections.abc import Awaitable, Callable, Sequence

import grpc

from photosearch.common.infra import Infra
from photosearch.common.logging import get_logger
from photosearch.common.periodic import sleep_unless
from photosearch_search.domain import WorkerHeartbeat
from photosearch_search.models import ModelRegistry
from photosearch_search.nearest import VectorQueries
from photosearch_search.rebuild import Rebuilder
from photosearch_search.workers import WorkerDirectory

log = get_logger(__name__)


class SearchLifecycle:
    def __init__(
        self,
        infra: Infra,
        registry: ModelRegistry,
        workers: WorkerDirectory,
        rebuilder: Rebuilder,
        vectors: VectorQueries,
        consumers: list[Callable[[asyncio.Event], Awaitable[None]]],
        catalog_channel: grpc.aio.Channel,
        *,
        default_model_id: str,
        poll_seconds: float,
        on_stop: Sequence[Callable[[], None]] = (),
    ) -> None:
        self.infra = infra
        self._registry = registry
        self._workers = workers
        self._rebuilder = rebuilder
        self._vectors = vectors
        self._consumers = consumers
        self._catalog_channel = catalog_channel
        self._default_model_id = default_model_id
        self._poll = poll_seconds
        self._on_stop = list(on_stop)  # e.g. worker threads to let go
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        # Adopted models whose backfill has not gone through yet (e.g. catalog was away).
        self._backfills: set[str] = set()

    async def start(self) -> None:
        await self.infra.start()  # applies the migrations first
        await self._vectors.open(self.infra.database_url or "")
        if self._default_model_id:
            await self._registry.set_active(self._default_model_id, only_if_unset=True)
        await self._workers.bucket()
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(self._forever(consumer, f"consumer-{i}"))
                for i, consumer in enumerate(self._consumers)
            ]
            self._tasks.append(asyncio.create_task(self._forever(self._watch, "worker-watch")))

    async def ready(self) -> bool:
        """Searches need only Postgres: a NATS outage delays events, whose consumers
        reconnect by themselves, so it does not take search out of service."""
        if not self._tasks or any(t.done() for t in self._tasks):
            return False
        if self.infra.nc is not None and self.infra.nc.is_closed:
            return False  # a closed client never reconnects
        return await self.infra.database_ok()

    async def stop(self) -> None:
        self._stopping.set()
        await self._rebuilder.stop()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=10.0)
        for task in self._tasks:
            task.cancel()
        await self._catalog_channel.close(None)
        await self._vectors.close()
        await self.infra.stop()
        for release in self._on_stop:
            release()

    async def _forever(self, work: Callable[[asyncio.Event], Awaitable[None]], name: str) -> None:
        """Restart background work that fails (e.g. NATS away while it subscribes)."""
        while not self._stopping.is_set():
            try:
                await work(self._stopping)
            except Exception as exc:
                log.warning("background.restart", task=name, error=str(exc))
                await sleep_unless(self._stopping, 1.0)

    async def _watch(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            try:
                workers = await self._workers.online()
                await self._register_models(workers)
                if workers and not await self._registry.active_model_id():
                    await self._adopt(workers)
                for model_id in sorted(self._backfills):
                    await self._backfill(model_id)
            except Exception as exc:
                log.warning("workers.watch_failed", error=str(exc))
            await sleep_unless(stopping, self._poll)

    async def _register_models(self, workers: list[WorkerHeartbeat]) -> None:
        for model_id, dim in sorted({(w.model_id, w.dim) for w in workers if w.dim > 0}):
            try:
                await self._registry.ensure(model_id, dim)
            except Exception as exc:
                log.warning("workers.model_rejected", model_id=model_id, dim=dim, error=str(exc))

    async def _adopt(self, workers: list[WorkerHeartbeat]) -> None:
        first = min(workers, key=lambda w: (w.started_at.ToNanoseconds(), w.worker_id))
        active = await self._registry.set_active(first.model_id, only_if_unset=True)
        if active != first.model_id:
            return  # another replica (or an admin) chose first
        log.info("model.adopted", model_id=active, worker_id=first.worker_id)
        # Images added while no model was active have no job yet: queue them now.
        self._backfills.add(active)

    async def _backfill(self, model_id: str) -> None:
        try:
            outcome = await self._rebuilder.rebuild(model_id, retry_failed=False)
        except Exception as exc:
            log.warning("model.backfill_failed", model_id=model_id, error=str(exc))
            return
        self._backfills.discard(model_id)
        log.info("model.backfill", model_id=model_id, queued=outcome.queued)
