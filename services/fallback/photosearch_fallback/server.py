"""Wiring only: build the gRPC server and the lifecycle of the fallback service."""

from photosearch.common.grpc_server import GrpcServer, create_server
from photosearch.common.infra import Infra
from photosearch.fallback.v1 import fallback_pb2_grpc
from photosearch_fallback.config import FallbackSettings
from photosearch_fallback.servicer import FallbackServicer

SERVICE_NAME = "photosearch.fallback.v1.FallbackService"


async def build_server(settings: FallbackSettings) -> tuple[GrpcServer, Infra]:
    infra = Infra(
        "fallback",
    )
    server = await create_server(settings.grpc_address, [SERVICE_NAME], settings.tls_dir)
    fallback_pb2_grpc.add_FallbackServiceServicer_to_server(FallbackServicer(), server.server)  # type: ignore[abstract]
    return server, infra
