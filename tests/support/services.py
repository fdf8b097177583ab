"""Run a service's real gRPC server inside the test's event loop, wired by the
service's own `build_server(settings)`, so tests exercise production wiring."""

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from photosearch.common.channels import open_channel
from photosearch.common.grpc_server import GrpcServer, Lifecycle, serve
from photosearch.common.settings import ServiceSettings


@dataclass
class RunningService:
    server: GrpcServer
    lifecycle: Any
    stopping: asyncio.Event
    task: asyncio.Task[None]

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.port}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.server.metrics_port}/metrics"

    def channel(self) -> grpc.aio.Channel:
        return open_channel(self.address)

    async def stop(self) -> None:
        self.stopping.set()
        await asyncio.wait_for(self.task, 30)


async def wait_serving(address: str, timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    async with grpc.aio.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            try:
                reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=1.0)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.aio.AioRpcError:
                pass
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"{address} not SERVING after {timeout} s")
            await asyncio.sleep(0.05)


async def start_service(
    build_server: Callable[[Any], Awaitable[tuple[GrpcServer, Lifecycle]]],
    settings: ServiceSettings,
    *,
    wait: bool = True,
    serving_timeout: float = 30.0,
) -> RunningService:
    """Start on a free port (set settings.grpc_port=0) and wait until SERVING (at most
    `serving_timeout` seconds); /metrics answers on a free port too
    (RunningService.server.metrics_port)."""
    settings = settings.model_copy(update={"metrics_port": 0})
    server, lifecycle = await build_server(settings)
    stopping = asyncio.Event()
    task = asyncio.create_task(
        serve(server, lifecycle, settings, readiness_interval=0.2, stopping=stopping)
    )
    running = RunningService(server, lifecycle, stopping, task)
    if wait:
        await wait_serving(running.address, serving_timeout)
    return running
