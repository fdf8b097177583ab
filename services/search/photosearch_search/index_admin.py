"""The admin's use cases over the index: its status, the models and which is active,
rebuilds and the duplicates report. Searches are service.py's."""

from dataclasses import dataclass

from photosearch.common.errors import FailedPrecondition, InvalidArgument
from photosearch.common.infra import Infra
from photosearch_search import coverage, duplicates, region_store
from photosearch_search.catalog import CatalogReader
from photosearch_search.domain import DuplicateReport, IndexStatus, ModelCoverage, RebuildOutcome
from photosearch_search.duplicates import DuplicateSettings
from photosearch_search.jobs import EmbedJobQueue
from photosearch_search.models import ModelRegistry
from photosearch_search.rebuild import Rebuilder, walk_running
from photosearch_search.workers import WorkerDirectory

FAILURES_SHOWN = 100


@dataclass(frozen=True)
class IndexAdmin:
    infra: Infra
    registry: ModelRegistry
    catalog: CatalogReader
    queue: EmbedJobQueue
    workers: WorkerDirectory
    rebuilder: Rebuilder
    duplicate_settings: DuplicateSettings

    async def index_status(self, model_id: str) -> IndexStatus:
        active = await self.registry.active_model_id()
        model_id = model_id or active
        status = IndexStatus(model_id=model_id, active_model_id=active)
        status.workers = await self.workers.online()
        status.catalog_images = await self.catalog.count_images()
        if not model_id:
            status.pending = status.catalog_images
            return status
        model = await self.registry.get(model_id)
        status.queue_depth = await self.queue.depth(model_id)
        async with self.infra.require_pool().connection() as conn:
            if model is not None:
                status.dim = model.dim
                status.embedded = await coverage.embedded_images(conn, model)
                status.region_indexed, status.region_words = await region_store.ready_coverage(
                    conn, model_id
                )
            status.failed, status.failures = await coverage.failures(conn, model_id, FAILURES_SHOWN)
            walking = await walk_running(conn, model_id)
            waiting = await coverage.outstanding_jobs(conn, model_id, rebuild_only=True)
        status.pending = max(status.catalog_images - status.embedded - status.failed, 0)
        status.rebuild_in_progress = walking or (waiting > 0 and status.queue_depth > 0)
        return status

    async def rebuild(self, model_id: str, retry_failed: bool) -> RebuildOutcome:
        if not model_id:
            model_id = await self.registry.active_model_id()
            if not model_id:
                raise FailedPrecondition(
                    "no model is active yet: name the model to rebuild, or start an embedder"
                )
        return await self.rebuilder.rebuild(model_id, retry_failed=retry_failed)

    async def list_models(self) -> list[ModelCoverage]:
        active = await self.registry.active_model_id()
        result = []
        async with self.infra.require_pool().connection() as conn:
            for model in await self.registry.all():
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
        await self.registry.require(model_id)  # NotFound, naming the known models
        if force:  # the admin accepts missing results: no need to ask catalog
            return await self.registry.set_active(model_id)
        status = await self.index_status(model_id)
        if status.pending > 0:
            raise FailedPrecondition(
                f"model {model_id!r} covers {status.embedded} of {status.catalog_images} catalog "
                f"images ({status.pending} pending, {status.failed} failed): rebuild it and wait, "
                "or switch with force to accept missing results"
            )
        return await self.registry.set_active(model_id)

    async def duplicate_report(
        self, model_id: str, threshold: float, limit: int
    ) -> DuplicateReport:
        model = await self.registry.resolve(model_id)
        if threshold == 0:
            threshold = self.duplicate_settings.threshold
        if not -1.0 <= threshold <= 1.0:
            raise InvalidArgument(
                f"threshold must be a cosine similarity in [-1, 1], got {threshold}"
            )
        if limit < 0:
            raise InvalidArgument(f"limit must not be negative, got {limit}")
        limit = limit or 100
        async with self.infra.require_pool().connection() as conn:
            images = await duplicates.count_fingerprints(conn, model)
            if images <= self.duplicate_settings.exact_max_images:
                images, pairs, confusables = await duplicates.exact(conn, model, threshold, limit)
                exact = True
            else:
                pairs, confusables = await duplicates.approximate(
                    conn, model, threshold, limit, self.duplicate_settings.timeout
                )
                exact = False
        return DuplicateReport(model.model_id, threshold, pairs, confusables, images, exact)
