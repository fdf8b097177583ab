"""Prometheus figures of one search replica: how long searches take by kind (plain:
the fingerprint alone; reranked: verified by local matching) and what they answered,
and, sampled in the background, the state of each model's index (photos indexed,
embeds pending and failed, the active model and its workers online). The index
figures are the same on every replica: dashboards and alerts take their max. The bytes
of region-index postings held are the replica's own."""

import asyncio
from collections.abc import Awaitable, Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from photosearch.common.infra import Infra
from photosearch.common.periodic import repeat
from photosearch_search import coverage
from photosearch_search.domain import SearchResult
from photosearch_search.held_postings import HeldPostings
from photosearch_search.models import ModelRegistry
from photosearch_search.workers import WorkerDirectory

# A plain search answers in a few ms, a re-ranked one in tens; a stall shows past 250 ms.
SEARCH_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5)
COMPARED_BUCKETS = (0, 1, 2, 5, 10, 15, 20, 30, 50, 100)


class SearchMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.seconds = Histogram(
            "search_query_seconds",
            "Time to answer a search, by kind (plain, reranked).",
            ["kind"],
            buckets=SEARCH_BUCKETS,
            registry=self.registry,
        )
        self.answers = Counter(
            "search_answers",
            "Searches answered, by kind and by the band of the answer (match, possible, no_match).",
            ["kind", "band"],
            registry=self.registry,
        )
        self.compared = Histogram(
            "search_rerank_candidates_compared",
            "Candidates whose photos a re-ranked search compared by local matching.",
            buckets=COMPARED_BUCKETS,
            registry=self.registry,
        )
        self.verified = Counter(
            "search_candidates_verified",
            "Candidates returned whose local matches verified them (re-ranked searches).",
            registry=self.registry,
        )
        self.region_candidates = Counter(
            "search_region_candidates",
            "Candidates the region index added beyond the fingerprint's nearest items.",
            registry=self.registry,
        )
        self.indexed = Gauge(
            "search_model_images",
            "Photos with vectors in a model's index.",
            ["model_id"],
            registry=self.registry,
        )
        self.pending = Gauge(
            "search_embed_pending",
            "Embed jobs queued for a model and not answered yet.",
            ["model_id"],
            registry=self.registry,
        )
        self.oldest_pending = Gauge(
            "search_embed_oldest_pending_seconds",
            "Age of the oldest embed job of a model not answered yet (0: none).",
            ["model_id"],
            registry=self.registry,
        )
        self.failed = Gauge(
            "search_embed_failed",
            "Photos a model's embedders could not embed (EmbedFailed recorded).",
            ["model_id"],
            registry=self.registry,
        )
        self.active = Gauge(
            "search_active_model",
            "1 for the model searches use by default.",
            ["model_id"],
            registry=self.registry,
        )
        self.workers = Gauge(
            "search_embed_workers",
            "Embed-capable workers with a live heartbeat, by the model they serve.",
            ["model_id"],
            registry=self.registry,
        )
        self.postings_bytes = Gauge(
            "search_region_postings_bytes",
            "Bytes of a model's region-index postings this replica holds in memory"
            " (0: its word query runs in SQL).",
            ["model_id"],
            registry=self.registry,
        )

    def searched(self, result: SearchResult, seconds: float) -> None:
        kind = "reranked" if result.reranked else "plain"
        self.seconds.labels(kind).observe(seconds)
        self.answers.labels(kind, result.band.value).inc()
        if result.reranked:
            self.compared.observe(result.compared)
            self.verified.inc(sum(c.verified for c in result.candidates))
            self.region_candidates.inc(result.region_candidates)


class IndexGauges:
    """Samples the index figures every few seconds: a scrape never waits on Postgres."""

    def __init__(
        self,
        infra: Infra,
        registry: ModelRegistry,
        workers: WorkerDirectory,
        metrics: SearchMetrics,
        held: HeldPostings,
    ) -> None:
        self._infra = infra
        self._registry = registry
        self._workers = workers
        self._metrics = metrics
        self._held = held

    async def sample(self) -> None:
        m = self._metrics
        models = await self._registry.all()
        async with self._infra.require_pool().connection() as conn:
            for model in models:
                model_id = model.model_id
                m.indexed.labels(model_id).set(await coverage.embedded_images(conn, model))
                pending = await coverage.outstanding_jobs(conn, model_id, rebuild_only=False)
                m.pending.labels(model_id).set(pending)
                oldest = await coverage.oldest_job_seconds(conn, model_id)
                m.oldest_pending.labels(model_id).set(oldest)
                failed, _ = await coverage.failures(conn, model_id, 0)
                m.failed.labels(model_id).set(failed)
                m.postings_bytes.labels(model_id).set(self._held.bytes_held(model_id))
        active = await self._registry.active_model_id()
        online = await self._workers.online()
        model_ids = {model.model_id for model in models} | {w.model_id for w in online}
        if active:
            model_ids.add(active)
        for model_id in model_ids:
            m.active.labels(model_id).set(1 if model_id == active else 0)
            m.workers.labels(model_id).set(len(self._workers.for_model(online, model_id)))

    def every(self, seconds: float) -> Callable[[asyncio.Event], Awaitable[None]]:
        """A background task (lifecycle.py)."""

        async def run(stopping: asyncio.Event) -> None:
            await repeat(self.sample, seconds, stopping, failed="metrics.sample_failed")

        return run
