"""Wiring only: build the gRPC server and the lifecycle of the fallback service."""

from photosearch.common.channels import open_channel
from photosearch.common.grpc_server import GrpcServer, create_server
from photosearch.fallback.v1 import fallback_pb2_grpc
from photosearch_fallback.config import FallbackSettings
from photosearch_fallback.credentials import CatalogCredentials
from photosearch_fallback.lifecycle import FallbackLifecycle
from photosearch_fallback.service import WebDetectService
from photosearch_fallback.servicer import FallbackServicer
from photosearch_fallback.vision import VisionWebDetector

SERVICE_NAME = "photosearch.fallback.v1.FallbackService"


async def build_server(settings: FallbackSettings) -> tuple[GrpcServer, FallbackLifecycle]:
    catalog = open_channel(settings.catalog_addr, settings.tls_dir)
    credentials = CatalogCredentials(
        catalog, settings.credentials_cache_seconds, settings.catalog_timeout_seconds
    )
    detector = VisionWebDetector(settings.vision_options())
    service = WebDetectService(settings, credentials, detector)
    server = await create_server(settings.grpc_address, [SERVICE_NAME], settings.tls_dir)
    servicer = FallbackServicer(service)
    fallback_pb2_grpc.add_FallbackServiceServicer_to_server(servicer, server.server)
    return server, FallbackLifecycle(catalog, detector)
