"""The admin's use cases over the index: its status, the models and which is active,
rebuilds and the duplicates report. Searches are service.py's."""

from photosearch.common.errors import FailedPrecondition, InvalidArgument
from photosearch.common.infra import Infra
from photosearch_search import coverage, duplicates
from photosearch_search.catalog import CatalogReader
from photosearch_search.domain import DuplicateReport, IndexStatus, ModelCoverage, RebuildOutcome
from photosearch_search.duplicates import DuplicateSettings
from photosearch_search.jobs import EmbedJobQueue
from photosearch_search.models import ModelRegistry
from photosearch_search.rebuild import Rebuilder, walk_running
from photosearch_search.workers import WorkerDirectory

FAILURES_SHOWN = 100


class IndexAdmin:
    def __init__(
        self,
        infra: Infra,
        registry: ModelRegistry,
        catalog: CatalogReader,
        queue: EmbedJobQueue,
        workers: WorkerDirectory,
        rebuilder: Rebuilder,
        duplicate_settings: DuplicateSettings,
    ) -> None:
        self._infra = infra
        self._registry = registry
        self._catalog = catalog
        self._queue = queue
        self._workers = workers
        self._rebuilder = rebuilder
        self._duplicates = duplicate_settings

    async def index_status(self, model_id: str) -> IndexStatus:
        active = await self._registry.active_model_id()
        model_id = model_id or active
        status = IndexStatus(model_id=model_id, active_model_id=active)
        status.workers = await self._workers.online()
        status.catalog_images = await self._catalog.count_images()
        if not model_id:
            status.pending = status.catalog_images
            return status
        model = await self._registry.get(model_id)
        status.queue_depth = await self._queue.depth(model_id)
        async with self._infra.require_pool().connection() as conn:
            if model is not None:
                status.dim = model.dim
                status.embedded = await coverage.embedded_images(conn, model)
            status.failed, status.failures = await coverage.failures(conn, model_id, FAILURES_SHOWN)
            walking = await walk_running(conn, model_id)
            waiting = await coverage.outstanding_jobs(conn, model_id, rebuild_only=True)
        status.pending = max(status.catalog_images - status.embedded - status.failed, 0)
        status.rebuild_in_progress = walking or (waiting > 0 and status.queue_depth > 0)
        return status

    async def rebuild(self, model_id: str, retry_failed: bool) -> RebuildOutcome:
        if not model_id:
            model_id = await self._registry.active_model_id()
            if not model_id:
                raise FailedPrecondition(
                    "no model is active yet: name the model to rebuild, or start an embedder"
                )
        return await self._rebuilder.rebuild(model_id, retry_failed=retry_failed)

    async def list_models(self) -> list[ModelCoverage]:
        active = await self._registry.active_model_id()
        result = []
        async with self._infra.require_pool().connection() as conn:
            for model in await self._registry.all():
                failed, _ = await coverage.failures(conn, model.model_id, 0)
                embedded = await coverage.embedded_images(conn, model)
                result.append(
                    ModelCoverage(
                        model.model_id, model.dim, embedded, failed, model.model_id == active
                    )
                )
        return result

    async def set_active_model(self, model_id: str, force: bool) -> str:
        if not model_id:
            raise InvalidArgument("name the model to make active")
        await self._registry.require(model_id)  # NotFound, naming the known models
        if force:  # the admin accepts missing results: no need to ask catalog
            return await self._registry.set_active(model_id)
        status = await self.index_status(model_id)
        if status.pending > 0:
            raise FailedPrecondition(
                f"model {model_id!r} covers {status.embedded} of {status.catalog_images} catalog "
                f"images ({status.pending} pending, {status.failed} failed): rebuild it and wait, "
                "or switch with force to accept missing results"
            )
        return await self._registry.set_active(model_id)

    async def duplicate_report(
        self, model_id: str, threshold: float, limit: int
    ) -> DuplicateReport:
        model = await self._registry.resolve(model_id)
        if threshold == 0:
            threshold = self._duplicates.threshold
        if not -1.0 <= threshold <= 1.0:
            raise InvalidArgument(
                f"threshold must be a cosine similarity in [-1, 1], got {threshold}"
            )
        if limit < 0:
            raise InvalidArgument(f"limit must not be negative, got {limit}")
        limit = limit or 100
        async with self._infra.require_pool().connection() as conn:
            images = await duplicates.count_fingerprints(conn, model)
            if images <= self._duplicates.exact_max_images:
                images, pairs, confusables = await duplicates.exact(conn, model, threshold, limit)
                exact = True
            else:
                pairs, confusables = await duplicates.approximate(
                    conn, model, threshold, limit, self._duplicates.timeout
                )
                exact = False
        return DuplicateReport(model.model_id, threshold, pairs, confusables, images, exact)
