"""Prometheus figures of one embedder: what happened to the jobs it was handed, how
long its batches and model loads took, and (read when scraped) which model it serves,
on which runtime, and whether that model is in memory."""

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:  # status imports the worker, which imports these metrics
    from photosearch_embedder.status import EmbedderStatus

# A photo takes 30-100 ms on a CPU; a batch of 16, one to a few seconds; a cold load, more.
BATCH_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0)
LOAD_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)

# Outcomes of a job: its result stored and acked, its EmbedFailed stored (the photo
# cannot be embedded), the image gone from catalog (acked), offered again later
# (transient: catalog, NATS or the model failed), or refused as malformed / not ours.
OUTCOMES = ("completed", "failed", "gone", "retried", "rejected")


class EmbedderMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.jobs = Counter(
            "embedder_jobs",
            "Embed jobs settled, by model and outcome "
            "(completed, failed, gone, retried, rejected).",
            ["model_id", "outcome"],
            registry=self.registry,
        )
        self.redelivered = Counter(
            "embedder_jobs_redelivered",
            "Jobs received more than once (a worker died or a job was offered again).",
            ["model_id"],
            registry=self.registry,
        )
        self.batch_seconds = Histogram(
            "embedder_batch_seconds",
            "Time to embed one batch of photos (decode and model), by model.",
            ["model_id"],
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.batch_photos = Counter(
            "embedder_photos_embedded",
            "Photos handed to the model (decoded and embedded, or refused), by model.",
            ["model_id"],
            registry=self.registry,
        )
        self.model_load_seconds = Histogram(
            "embedder_model_load_seconds",
            "Time to load the model into memory (an onnxruntime session), by model.",
            ["model_id"],
            buckets=LOAD_BUCKETS,
            registry=self.registry,
        )

    def job_settled(self, model_id: str, outcome: str) -> None:
        self.jobs.labels(model_id, outcome).inc()

    def watch(self, status: "EmbedderStatus") -> None:
        """Report `status`'s model and runtime at each scrape."""
        self.registry.register(_StatusCollector(status))


class _StatusCollector(Collector):
    def __init__(self, status: "EmbedderStatus") -> None:
        self.status = status

    def collect(self) -> Iterator[GaugeMetricFamily | InfoMetricFamily]:
        state = self.status.model_state()
        ready = GaugeMetricFamily(
            "embedder_model_ready",
            "1 once a model is prepared and serves embed jobs, else 0.",
            labels=["model_id"],
        )
        loaded = GaugeMetricFamily(
            "embedder_model_loaded",
            "1 while the model is in memory (it unloads when idle), else 0.",
            labels=["model_id"],
        )
        runtime = InfoMetricFamily(
            "embedder_runtime",
            "The engines serving the model (chosen per host, EMBED_RUNTIME): engine and "
            "precision of the fingerprint graph, the local graph's engine, device, "
            "the export's quantization.",
        )
        ready.add_metric([state.model_id], 1 if state.available else 0)
        if state.available:
            loaded.add_metric([state.model_id], 1 if state.loaded else 0)
            labels = {
                "model_id": state.model_id,
                "engine": "onnxruntime",
                "device": state.device,
                "quantization": state.quantization,
            }
            if state.choice is not None:
                fingerprint, local = state.choice.fingerprint.engine, state.choice.local
                labels |= {
                    "engine": fingerprint.runtime,
                    "precision": fingerprint.precision,
                    "local_engine": local.engine.name if local else "",
                }
            runtime.add_metric([], labels)
        yield ready
        yield loaded
        yield runtime
