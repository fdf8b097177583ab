"""The shared gRPC runtime on a real server: error mapping, request ids, health."""

import asyncio

import grpc
import psycopg
import pytest
import structlog
from grpc_health.v1 import health_pb2, health_pb2_grpc

from photosearch.common import errors
from photosearch.common.channels import open_channel
from photosearch.common.context import bind_request_id
from photosearch.common.grpc_server import create_server, serve
from photosearch.common.settings import ServiceSettings
from tests.support.metrics import scrape

SERVICE = "test.Probe"


def raw(handler):
    return grpc.unary_unary_rpc_method_handler(
        handler, request_deserializer=bytes, response_serializer=bytes
    )


class Probe:
    """A servicer whose behaviour each test picks through the request body."""

    def __init__(self) -> None:
        self.seen_request_ids: list[str | None] = []

    async def call(self, request: bytes, context) -> bytes:
        self.seen_request_ids.append(structlog.contextvars.get_contextvars().get("request_id"))
        if request == b"not-found":
            raise errors.NotFound("item i1 does not exist")
        if request == b"precondition":
            raise errors.FailedPrecondition("no embed-capable worker is online")
        if request == b"db-down":
            raise psycopg.OperationalError("connection to server at 10.0.0.5 failed")
        if request == b"nul":
            raise psycopg.DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes")
        if request == b"bug":
            raise ZeroDivisionError("secret internals")
        return b"ok:" + request


class Deps:
    def __init__(self) -> None:
        self.healthy = asyncio.Event()
        self.metrics_url = ""

    async def start(self) -> None:
        pass

    async def ready(self) -> bool:
        return self.healthy.is_set()

    async def stop(self) -> None:
        pass


@pytest.fixture
async def probe_server():
    server = await create_server("127.0.0.1:0", [SERVICE])
    probe = Probe()
    server.server.add_generic_rpc_handlers(
        [grpc.method_handlers_generic_handler(SERVICE, {"Call": raw(probe.call)})]
    )
    deps, stopping = Deps(), asyncio.Event()
    settings = ServiceSettings(metrics_port=0)
    task = asyncio.create_task(
        serve(server, deps, settings, readiness_interval=0.05, stopping=stopping)
    )
    channel = open_channel(f"127.0.0.1:{server.port}")
    await channel.channel_ready()  # serve() opens /metrics before the gRPC port
    deps.metrics_url = f"http://127.0.0.1:{server.metrics_port}/metrics"
    yield channel, probe, deps
    await channel.close()
    stopping.set()
    await task


async def call(channel, body: bytes) -> bytes:
    method = channel.unary_unary(
        f"/{SERVICE}/Call", request_serializer=bytes, response_deserializer=bytes
    )
    return await method(body, timeout=5)


async def test_domain_errors_map_to_status_codes_with_their_message(probe_server) -> None:
    channel, _, _ = probe_server
    assert await call(channel, b"hi") == b"ok:hi"
    with pytest.raises(grpc.aio.AioRpcError) as not_found:
        await call(channel, b"not-found")
    assert not_found.value.code() == grpc.StatusCode.NOT_FOUND
    assert not_found.value.details() == "item i1 does not exist"
    with pytest.raises(grpc.aio.AioRpcError) as precondition:
        await call(channel, b"precondition")
    assert precondition.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_bugs_become_internal_without_leaking_details(probe_server) -> None:
    channel, _, _ = probe_server
    with pytest.raises(grpc.aio.AioRpcError) as bug:
        await call(channel, b"bug")
    assert bug.value.code() == grpc.StatusCode.INTERNAL
    assert "secret internals" not in (bug.value.details() or "")
    assert "request id" in (bug.value.details() or "")


async def test_a_database_outage_is_unavailable_not_internal(probe_server) -> None:
    channel, _, _ = probe_server
    with pytest.raises(grpc.aio.AioRpcError) as down:
        await call(channel, b"db-down")
    assert down.value.code() == grpc.StatusCode.UNAVAILABLE
    assert down.value.details() == "the database is unavailable; retry shortly"


async def test_a_value_the_database_refuses_is_an_invalid_argument(probe_server) -> None:
    channel, _, _ = probe_server
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call(channel, b"nul")
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "cannot contain NUL" in (refused.value.details() or "")


async def test_request_id_travels_with_the_call(probe_server) -> None:
    channel, probe, _ = probe_server
    bind_request_id("trace-42")
    try:
        await call(channel, b"x")
    finally:
        structlog.contextvars.clear_contextvars()
    await call(channel, b"y")  # without one, the server makes a fresh id
    assert probe.seen_request_ids[0] == "trace-42"
    assert probe.seen_request_ids[1] and probe.seen_request_ids[1] != "trace-42"


async def test_health_follows_the_dependencies(probe_server) -> None:
    channel, _, deps = probe_server
    health = health_pb2_grpc.HealthStub(channel)

    async def status() -> int:
        reply = await health.Check(health_pb2.HealthCheckRequest(service=SERVICE), timeout=2)
        return reply.status

    assert await status() == health_pb2.HealthCheckResponse.NOT_SERVING
    deps.healthy.set()
    for _ in range(100):
        if await status() == health_pb2.HealthCheckResponse.SERVING:
            break
        await asyncio.sleep(0.02)
    assert await status() == health_pb2.HealthCheckResponse.SERVING
    deps.healthy.clear()
    for _ in range(100):
        if await status() == health_pb2.HealthCheckResponse.NOT_SERVING:
            break
        await asyncio.sleep(0.02)
    assert await status() == health_pb2.HealthCheckResponse.NOT_SERVING


async def test_metrics_count_rpcs_by_method_and_code_and_follow_health(probe_server) -> None:
    channel, _, deps = probe_server
    await call(channel, b"a")
    await call(channel, b"b")
    with pytest.raises(grpc.aio.AioRpcError):
        await call(channel, b"not-found")
    deps.healthy.set()
    for _ in range(100):
        figures = await scrape(deps.metrics_url)
        if figures.value("photosearch_serving", service=SERVICE) == 1:
            break
        await asyncio.sleep(0.02)
    labels = {"grpc_service": SERVICE, "grpc_method": "Call"}
    assert figures.value("grpc_server_handled_total", grpc_code="OK", **labels) == 2
    assert figures.value("grpc_server_handled_total", grpc_code="NOT_FOUND", **labels) == 1
    assert figures.value("grpc_server_handling_seconds_count", **labels) == 3
    assert figures.value("photosearch_serving", service=SERVICE) == 1
    assert figures.value("process_resident_memory_bytes") > 0
