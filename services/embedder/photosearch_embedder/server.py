"""Wiring only: build the gRPC server and the lifecycle of the embedder service."""

from photosearch.common.grpc_server import GrpcServer, create_server
from photosearch.common.infra import Infra
from photosearch.embedder.v1 import embedder_pb2_grpc
from photosearch_embedder.config import EmbedderSettings
from photosearch_embedder.lifecycle import EmbedderLifecycle
from photosearch_embedder.servicer import EmbedderServicer
from photosearch_embedder.source import CatalogImageSource, ImageSource

SERVICE_NAME = "photosearch.embedder.v1.EmbedderService"


async def build_server(
    settings: EmbedderSettings, source: ImageSource | None = None
) -> tuple[GrpcServer, EmbedderLifecycle]:
    infra = Infra(
        "embedder",
        nats_url=settings.nats_url,
        stream_replicas=settings.nats_stream_replicas,
    )
    images = source or CatalogImageSource(
        settings.catalog_addr, timeout=settings.catalog_timeout_seconds, tls_dir=settings.tls_dir
    )
    lifecycle = EmbedderLifecycle(settings, infra, images)
    server = await create_server(settings.grpc_address, [SERVICE_NAME], settings.tls_dir)
    embedder_pb2_grpc.add_EmbedderServiceServicer_to_server(  # type: ignore[no-untyped-call]
        EmbedderServicer(lifecycle), server.server
    )
    return server, lifecycle
