"""Wiring only: build the gRPC server and the lifecycle of the fallback service."""

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from photosearch.common.channels import open_channel
from photosearch.common.grpc_server import GrpcServer, create_server
from photosearch.fallback.v1 import fallback_pb2_grpc
from photosearch_fallback.config import FallbackSettings
from photosearch_fallback.credentials import CatalogCredentials
from photosearch_fallback.service import WebDetectService
from photosearch_fallback.servicer import FallbackServicer
from photosearch_fallback.vision import VisionOptions, VisionWebDetector

SERVICE_NAME = "photosearch.fallback.v1.FallbackService"


class FallbackLifecycle:
    """No database and no NATS: ready means catalog (settings and key) answers."""

    def __init__(self, catalog: grpc.aio.Channel, detector: VisionWebDetector) -> None:
        self._catalog = catalog
        self._health = health_pb2_grpc.HealthStub(catalog)
        self._detector = detector

    async def start(self) -> None:
        pass

    async def ready(self) -> bool:
        try:
            reply = await self._health.Check(health_pb2.HealthCheckRequest(), timeout=1.0)
        except grpc.aio.AioRpcError:
            return False
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)

    async def stop(self) -> None:
        await self._catalog.close(None)
        self._detector.close()


def vision_options(settings: FallbackSettings) -> VisionOptions:
    return VisionOptions(
        endpoint=settings.vision_endpoint,
        deadline_seconds=settings.vision_deadline_seconds,
        attempt_timeout_seconds=settings.vision_attempt_timeout_seconds,
        max_attempts=settings.vision_max_attempts,
        backoff_seconds=settings.vision_backoff_seconds,
        backoff_max_seconds=settings.vision_backoff_max_seconds,
        concurrency=settings.vision_concurrency,
    )


async def build_server(settings: FallbackSettings) -> tuple[GrpcServer, FallbackLifecycle]:
    catalog = open_channel(settings.catalog_addr, settings.tls_dir)
    credentials = CatalogCredentials(
        catalog, settings.credentials_cache_seconds, settings.catalog_timeout_seconds
    )
    detector = VisionWebDetector(vision_options(settings))
    service = WebDetectService(settings, credentials, detector)
    server = await create_server(settings.grpc_address, [SERVICE_NAME], settings.tls_dir)
    servicer = FallbackServicer(service)
    fallback_pb2_grpc.add_FallbackServiceServicer_to_server(servicer, server.server)
    return server, FallbackLifecycle(catalog, detector)
