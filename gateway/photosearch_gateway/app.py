"""The FastAPI application: routes are thin, gRPC clients do the work."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import grpc
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from grpc_health.v1 import health_pb2, health_pb2_grpc

from photosearch.common.channels import open_channel
from photosearch_gateway.config import GatewaySettings


class Dependencies:
    """One gRPC channel per upstream service, opened once."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self.channels: dict[str, grpc.aio.Channel] = {
            "catalog": open_channel(settings.catalog_addr, settings.tls_dir),
            "search": open_channel(settings.search_addr, settings.tls_dir),
            "embedder": open_channel(settings.embedder_addr, settings.tls_dir),
            "fallback": open_channel(settings.fallback_addr, settings.tls_dir),
        }

    async def health(self) -> dict[str, str]:
        async def check(name: str, channel: grpc.aio.Channel) -> tuple[str, str]:
            stub = health_pb2_grpc.HealthStub(channel)
            try:
                reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=1.0)
                return name, health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
            except grpc.aio.AioRpcError as exc:
                return name, exc.code().name

        results = await asyncio.gather(*(check(n, c) for n, c in self.channels.items()))
        return dict(results)

    async def close(self) -> None:
        await asyncio.gather(*(c.close(None) for c in self.channels.values()))


def create_app(settings: GatewaySettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # gRPC aio channels belong to the loop they are made on: open them in the server's loop.
        app.state.deps = Dependencies(settings)
        yield
        await app.state.deps.close()

    app = FastAPI(title="photosearch", version="1.0.0", lifespan=lifespan)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        services = await app.state.deps.health()
        ready = all(status == "SERVING" for status in services.values())
        return JSONResponse(
            {"ready": ready, "services": services}, status_code=200 if ready else 503
        )

    return app
