"""Wiring only: build every part of the embedder service and its gRPC server.

What serving imports is what this module imports (and what those import). The export
package (photosearch_embedder.export, PyTorch) is not among them: prepare.py runs it
in a child process when the model must be exported first."""

from nats.js import JetStreamContext

from photosearch.common.grpc_server import GrpcServer, create_server
from photosearch.common.infra import Infra
from photosearch.common.metrics import ServiceMetrics
from photosearch.common.model_files import ModelFiles
from photosearch.embedder.v1 import embedder_pb2_grpc
from photosearch_embedder.config import EmbedderSettings
from photosearch_embedder.heartbeat import Heartbeat
from photosearch_embedder.lifecycle import EmbedderLifecycle, EmbedderParts
from photosearch_embedder.manager import ModelManager
from photosearch_embedder.metrics import EmbedderMetrics
from photosearch_embedder.runtime import pick_device, release_memory
from photosearch_embedder.runtime_choice import RuntimeChoice, choose
from photosearch_embedder.service import Embedder
from photosearch_embedder.servicer import EmbedderServicer
from photosearch_embedder.source import CatalogImageSource, ImageSource
from photosearch_embedder.status import EmbedderStatus, WorkerIdentity
from photosearch_embedder.worker import EmbedWorker

SERVICE_NAME = "photosearch.embedder.v1.EmbedderService"


async def build_server(
    settings: EmbedderSettings, source: ImageSource | None = None
) -> tuple[GrpcServer, EmbedderLifecycle]:
    """`source`: where image bytes come from (default: catalog's GetImage)."""
    infra = Infra(
        "embedder",
        nats_url=settings.nats_url,
        stream_replicas=settings.nats_stream_replicas,
    )
    images = source or CatalogImageSource(
        settings.catalog_addr, timeout=settings.catalog_timeout_seconds, tls_dir=settings.tls_dir
    )
    identity = WorkerIdentity.of_this_process(settings.worker_id)
    status = EmbedderStatus(
        identity, batch_size=settings.batch_size, index_variants=settings.index_variants
    )
    service_metrics = ServiceMetrics(SERVICE_NAME)
    metrics = EmbedderMetrics(service_metrics.registry)
    metrics.watch(status)

    device = pick_device(settings.device)

    def choose_runtime(files: ModelFiles) -> RuntimeChoice:
        choice = choose(files, settings.choice_request(device))
        release_memory()  # what the timed candidates held goes back before serving
        return choice

    def open_model(files: ModelFiles, choice: RuntimeChoice) -> Embedder:
        manager = ModelManager(
            files,
            device=device,
            idle_grace=settings.model_idle_grace,
            batch_size=settings.batch_size,
            threads=settings.inference_threads,
            metrics=metrics,
            choice=choice,
        )
        return Embedder(manager, decode_threads=settings.decode_threads)

    def worker(js: JetStreamContext, embedder: Embedder) -> EmbedWorker:
        options = settings.worker_options(identity.worker_id)
        return EmbedWorker(js, embedder, images, options, metrics)

    def heartbeat(js: JetStreamContext) -> Heartbeat:
        return Heartbeat(
            js,
            status.heartbeat,
            interval=settings.heartbeat_interval_seconds,
            ttl=settings.heartbeat_ttl_seconds,
            replicas=settings.nats_stream_replicas,
        )

    lifecycle = EmbedderLifecycle(
        infra,
        images,
        status,
        settings.model_request(),
        EmbedderParts(choose_runtime, open_model, worker, heartbeat),
    )
    server = await create_server(
        settings.grpc_address, [SERVICE_NAME], settings.tls_dir, service_metrics
    )
    embedder_pb2_grpc.add_EmbedderServiceServicer_to_server(  # type: ignore[no-untyped-call]
        EmbedderServicer(status), server.server
    )
    return server, lifecycle
