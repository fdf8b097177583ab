"""What the fallback service runs around its gRPC server: no database and no NATS,
only the channel to catalog (which holds the settings and the key) and the Vision
client's threads."""

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from photosearch_fallback.vision import VisionWebDetector


class FallbackLifecycle:
    """Ready means catalog answers: without it no call can read the key."""

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
