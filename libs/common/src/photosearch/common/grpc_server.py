"""Server bootstrap shared by every service: health, reflection, interceptors,
optional TLS, readiness that follows the service's dependencies, and a graceful
shutdown on SIGTERM/SIGINT."""

import asyncio
import signal
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from photosearch.common.interceptors import ServiceInterceptor
from photosearch.common.logging import get_logger
from photosearch.common.metrics import ServiceMetrics, serve_metrics
from photosearch.common.periodic import sleep_unless
from photosearch.common.settings import ServiceSettings

log = get_logger(__name__)
AsyncHealthServicer = health.aio.HealthServicer  # type: ignore[attr-defined]

MAX_MESSAGE_BYTES = 64 * 1024 * 1024
SERVER_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
]


@dataclass
class GrpcServer:
    server: grpc.aio.Server
    port: int
    health: Any  # grpc_health.v1.health.aio.HealthServicer
    service_names: tuple[str, ...]
    metrics: ServiceMetrics
    metrics_port: int = 0  # where /metrics answers, once serving

    async def set_serving(self, serving: bool) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ("", *self.service_names):
            await self.health.set(name, status)
        self.metrics.set_serving(serving)


def server_credentials(tls_dir: str) -> grpc.ServerCredentials | None:
    """TLS from a mounted directory (tls.crt, tls.key, optional ca.crt for mTLS)."""
    if not tls_dir:
        return None
    folder = Path(tls_dir)
    ca = folder / "ca.crt"
    return grpc.ssl_server_credentials(
        [((folder / "tls.key").read_bytes(), (folder / "tls.crt").read_bytes())],
        root_certificates=ca.read_bytes() if ca.exists() else None,
        require_client_auth=ca.exists(),
    )


async def create_server(
    address: str,
    service_names: Sequence[str],
    tls_dir: str = "",
    metrics: ServiceMetrics | None = None,
) -> GrpcServer:
    """Build a server on `address` ("[::]:0" picks a free port). Health starts NOT_SERVING.
    `metrics`: the service's registry, when its modules add figures of their own."""
    metrics = metrics or ServiceMetrics(service_names[0] if service_names else "service")
    server = grpc.aio.server(interceptors=[ServiceInterceptor(metrics)], options=SERVER_OPTIONS)
    health_servicer = AsyncHealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (*service_names, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    credentials = server_credentials(tls_dir)
    port = (
        server.add_secure_port(address, credentials)
        if credentials
        else server.add_insecure_port(address)
    )
    grpc_server = GrpcServer(server, port, health_servicer, tuple(service_names), metrics)
    await grpc_server.set_serving(False)
    return grpc_server


class Lifecycle(Protocol):
    """What a service plugs into `serve`: its dependencies and background work."""

    async def start(self) -> None:
        """Connect dependencies and start background work; raise to retry later."""

    async def ready(self) -> bool:
        """Whether every dependency answers right now."""

    async def stop(self) -> None:
        """Stop background work (after in-flight RPCs finished) and close connections."""


async def _start_with_retry(lifecycle: Lifecycle, stopping: asyncio.Event) -> bool:
    delay = 0.2
    while not stopping.is_set():
        try:
            await lifecycle.start()
            return True
        except Exception as exc:  # dependencies may come up after us
            log.warning("startup.retry", error=str(exc), retry_in_s=delay)
            await sleep_unless(stopping, delay)
            delay = min(delay * 2, 5.0)
    return False


async def _follow_readiness(
    server: GrpcServer, lifecycle: Lifecycle, stopping: asyncio.Event, interval: float
) -> None:
    serving: bool | None = None
    while not stopping.is_set():
        try:
            ok = await asyncio.wait_for(lifecycle.ready(), timeout=max(interval, 1.0))
        except Exception:
            ok = False
        if ok != serving:
            serving = ok
            await server.set_serving(ok)
            log.info("health.changed", serving=ok)
        await sleep_unless(stopping, interval)


async def serve(
    server: GrpcServer,
    lifecycle: Lifecycle,
    settings: ServiceSettings,
    *,
    readiness_interval: float = 1.0,
    stopping: asyncio.Event | None = None,
) -> None:
    """Run until SIGTERM/SIGINT (or, when given, until `stopping` is set), then drain and stop."""
    if stopping is None:
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stopping.set)
    endpoint = serve_metrics(server.metrics.registry, settings.host, settings.metrics_port)
    server.metrics_port = endpoint.port
    try:
        await _serve_until_stopped(server, lifecycle, settings, readiness_interval, stopping)
    finally:
        endpoint.close()
    log.info("server.stopped")


async def _serve_until_stopped(
    server: GrpcServer,
    lifecycle: Lifecycle,
    settings: ServiceSettings,
    readiness_interval: float,
    stopping: asyncio.Event,
) -> None:
    await server.server.start()
    log.info("server.started", port=server.port, metrics_port=server.metrics_port)
    started = await _start_with_retry(lifecycle, stopping)
    watcher = (
        asyncio.create_task(_follow_readiness(server, lifecycle, stopping, readiness_interval))
        if started
        else None
    )
    await stopping.wait()
    log.info("server.stopping", grace_s=settings.shutdown_grace_seconds)
    await server.health.enter_graceful_shutdown()
    if watcher:
        await watcher
    await server.server.stop(settings.shutdown_grace_seconds)
    if started:
        await lifecycle.stop()
