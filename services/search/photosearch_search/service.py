"""The search service's use cases: search, index status, models, rebuild, report."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection

from photosearch.common.errors import FailedPrecondition, InvalidArgument
from photosearch.common.infra import Infra
from photosearch.events.v1 import events_pb2
from photosearch_search import duplicates, queries
from photosearch_search.catalog import CatalogReader
from photosearch_search.domain import (
    DuplicateReport,
    Filters,
    ImageHit,
    IndexStatus,
    Model,
    ModelCoverage,
    RebuildOutcome,
    SearchQuery,
    SearchResult,
)
from photosearch_search.jobs import EmbedJobQueue
from photosearch_search.local_search import LocalSearch
from photosearch_search.models import ModelRegistry
from photosearch_search.queries import VectorQueries
from photosearch_search.rebuild import WALK_STALE_SECONDS, Rebuilder
from photosearch_search.vectors import best_per_item, check_k, check_min_score, query_vector
from photosearch_search.workers import WorkerDirectory

FAILURES_SHOWN = 100
# Image rows fetched per wanted item at first: items may have several images/variants.
ROWS_PER_ITEM = 4
MIN_ROWS = 40


@dataclass(frozen=True)
class SearchLimits:
    max_k: int
    exact_max_rows: int
    max_scan_rows: int
    duplicate_threshold: float
    duplicate_exact_max: int
    duplicate_timeout: float


class SearchService:
    def __init__(
        self,
        infra: Infra,
        registry: ModelRegistry,
        vectors: VectorQueries,
        catalog: CatalogReader,
        queue: EmbedJobQueue,
        workers: WorkerDirectory,
        rebuilder: Rebuilder,
        limits: SearchLimits,
        local_search: LocalSearch,
    ) -> None:
        self._infra = infra
        self._registry = registry
        self._vectors = vectors
        self._catalog = catalog
        self._queue = queue
        self._workers = workers
        self._rebuilder = rebuilder
        self._limits = limits
        self._local_search = local_search

    async def resolve_model(self, model_id: str) -> Model:
        """The named model, or the active one when the name is empty."""
        if not model_id:
            model_id = await self._registry.active_model_id()
            if not model_id:
                raise FailedPrecondition(
                    "no model is active yet: start an embedder (its model becomes active) "
                    "or set one with SetActiveModel"
                )
            model = await self._registry.get(model_id)
            if model is None:
                raise FailedPrecondition(
                    f"the index of the active model {model_id!r} is still empty: start an "
                    "embedder for it and let it work through the queue"
                )
            return model
        return await self._registry.require(model_id)

    async def search(
        self,
        model_id: str,
        values: Sequence[float],
        k: int,
        filters: Filters,
        min_score: float,
        local: Sequence[events_pb2.LocalDescriptors] = (),
    ) -> SearchResult:
        """With `local` (the query photo's local descriptors: as taken, then turned
        views) the top candidates are re-ranked by verified local matches."""
        model = await self.resolve_model(model_id)
        query = SearchQuery(
            model,
            query_vector(values, model),
            check_k(k, self._limits.max_k),
            filters,
            self._local_search.check_min_score(min_score) if local else check_min_score(min_score),
        )
        if local:
            return await self._local_search.search(query, local, self._search)
        return await self._vectors.run(lambda conn: self._search(conn, query))

    async def _search(self, conn: AsyncConnection[Any], query: SearchQuery) -> SearchResult:
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

    async def _exact(self, conn: AsyncConnection[Any], query: SearchQuery) -> SearchResult:
        hits: list[ImageHit] = await self._vectors.exact_best_per_item(
            conn, query.model, query.vector, query.filters, query.k
        )
        return SearchResult(
            query.model.model_id, best_per_item(hits, query.k, query.min_score), exact=True
        )

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
                status.embedded = await queries.embedded_images(conn, model)
            status.failed, status.failures = await queries.failures(conn, model_id, FAILURES_SHOWN)
            walking = await self._walking(conn, model_id)
            waiting = await queries.outstanding_jobs(conn, model_id, rebuild_only=True)
        status.pending = max(status.catalog_images - status.embedded - status.failed, 0)
        status.rebuild_in_progress = walking or (waiting > 0 and status.queue_depth > 0)
        return status

    @staticmethod
    async def _walking(conn: AsyncConnection[Any], model_id: str) -> bool:
        cur = await conn.execute(
            "SELECT EXISTS (SELECT 1 FROM rebuilds WHERE model_id = %s AND finished_at IS NULL"
            " AND heartbeat_at > now() - make_interval(secs => %s))",
            (model_id, WALK_STALE_SECONDS),
        )
        row = await cur.fetchone()
        return bool(row and row[0])

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
                failed, _ = await queries.failures(conn, model.model_id, 0)
                embedded = await queries.embedded_images(conn, model)
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
        model = await self.resolve_model(model_id)
        if threshold == 0:
            threshold = self._limits.duplicate_threshold
        if not -1.0 <= threshold <= 1.0:
            raise InvalidArgument(
                f"threshold must be a cosine similarity in [-1, 1], got {threshold}"
            )
        if limit < 0:
            raise InvalidArgument(f"limit must not be negative, got {limit}")
        limit = limit or 100
        async with self._infra.require_pool().connection() as conn:
            images = await duplicates.count_fingerprints(conn, model)
            if images <= self._limits.duplicate_exact_max:
                images, pairs, confusables = await duplicates.exact(conn, model, threshold, limit)
                exact = True
            else:
                pairs, confusables = await duplicates.approximate(
                    conn, model, threshold, limit, self._limits.duplicate_timeout
                )
                exact = False
        return DuplicateReport(model.model_id, threshold, pairs, confusables, images, exact)
