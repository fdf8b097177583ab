"""Wiring only: build the gRPC server and the lifecycle of the embedder service."""

from photosearch.common.grpc_server import GrpcServer, create_server
from photosearch.common.infra import Infra
from photosearch.embedder.v1 import embedder_pb2_grpc
from photosearch_embedder.config import EmbedderSettings
from photosearch_embedder.servicer import EmbedderServicer

SERVICE_NAME = "photosearch.embedder.v1.EmbedderService"


async def build_server(settings: EmbedderSettings) -> tuple[GrpcServer, Infra]:
    infra = Infra(
        "embedder",
        nats_url=settings.nats_url,
        stream_replicas=settings.nats_stream_replicas,
    )
    server = await create_server(settings.grpc_address, [SERVICE_NAME], settings.tls_dir)
    embedder_pb2_grpc.add_EmbedderServiceServicer_to_server(EmbedderServicer(), server.server)  # type: ignore[abstract]
    return server, infra
