"""Errors: gRPC codes map to HTTP codes in one place, a dead dependency is a quick 503
with Retry-After, request ids travel, metrics name route templates."""

import asyncio
import json

import grpc
import httpx
import pytest
import structlog

from photosearch_gateway.app import create_app
from photosearch_gateway.config import GatewaySettings
from photosearch_gateway.errors import HTTP_BY_GRPC
from tests.support.metrics import scrape
from tests.unit.gateway.fakes import World, unreachable_settings


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (grpc.StatusCode.INVALID_ARGUMENT, 400),
        (grpc.StatusCode.NOT_FOUND, 404),
        (grpc.StatusCode.FAILED_PRECONDITION, 409),
        (grpc.StatusCode.ALREADY_EXISTS, 409),
        (grpc.StatusCode.PERMISSION_DENIED, 403),
        (grpc.StatusCode.UNAUTHENTICATED, 401),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, 429),
        (grpc.StatusCode.UNAVAILABLE, 503),
        (grpc.StatusCode.DEADLINE_EXCEEDED, 503),
        (grpc.StatusCode.INTERNAL, 502),
        (grpc.StatusCode.UNIMPLEMENTED, 502),
    ],
)
async def test_grpc_status_maps_to_http(
    client: httpx.AsyncClient, world: World, code: grpc.StatusCode, status: int
) -> None:
    world.fail["GetItem"] = code
    reply = await client.get("/api/v1/items/abc")
    assert reply.status_code == status
    error = reply.json()["error"]
    assert error["request_id"] == reply.headers["x-request-id"]
    assert "Traceback" not in reply.text
    if status == 503:
        assert reply.headers["retry-after"] == "2"
        assert "catalog" in error["message"]


def test_every_mapped_code_is_a_client_or_availability_error() -> None:
    assert all(400 <= status < 500 or status == 503 for status, _ in HTTP_BY_GRPC.values())


async def test_a_dead_dependency_is_a_quick_503(tmp_path) -> None:
    settings = unreachable_settings(tmp_path, rpc_timeout_seconds=1.0)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
            reply = await asyncio.wait_for(http.get("/api/v1/config"), 5)
            assert reply.status_code == 503 and reply.headers["retry-after"]
            ready = await http.get("/readyz")
            assert ready.status_code == 503 and ready.json()["ready"] is False
            assert (await http.get("/healthz")).status_code == 200


async def test_a_hung_dependency_hits_the_deadline(tmp_path) -> None:
    hung = grpc.aio.server()

    async def never(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        await asyncio.sleep(30)
        return b""

    handler = grpc.method_handlers_generic_handler(
        "photosearch.catalog.v1.CatalogService",
        {"GetSettings": grpc.unary_unary_rpc_method_handler(never)},
    )
    hung.add_generic_rpc_handlers((handler,))
    port = hung.add_insecure_port("127.0.0.1:0")
    await hung.start()
    addr = f"127.0.0.1:{port}"
    settings = GatewaySettings(
        catalog_addr=addr,
        search_addr=addr,
        embedder_addr=addr,
        fallback_addr=addr,
        model_dir=tmp_path,
        rpc_timeout_seconds=0.3,
    )
    app = create_app(settings)
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
                reply = await asyncio.wait_for(http.get("/api/v1/config"), 5)
                assert reply.status_code == 503
                assert "did not answer in time" in reply.json()["error"]["message"]
                metrics = (await http.get("/metrics")).text
                assert 'code="DEADLINE_EXCEEDED",method="GetSettings",service="catalog"' in metrics
    finally:
        await hung.stop(None)


async def test_request_ids_travel_in_and_out(client: httpx.AsyncClient, world: World) -> None:
    given = await client.get("/api/v1/items", headers={"X-Request-Id": "req-abc.123"})
    assert given.headers["x-request-id"] == "req-abc.123"
    fresh = await client.get("/api/v1/items", headers={"X-Request-Id": "bad id\n<script>"})
    assert fresh.headers["x-request-id"] != "bad id\n<script>"
    assert len(fresh.headers["x-request-id"]) == 32


async def test_request_id_reaches_the_service(client: httpx.AsyncClient, world: World) -> None:
    seen: list[str | None] = []
    original = world.check

    async def record(method: str, context: grpc.aio.ServicerContext) -> None:
        metadata = dict(context.invocation_metadata() or ())
        seen.append(metadata.get("x-request-id"))
        await original(method, context)

    world.check = record  # type: ignore[method-assign]
    await client.get("/api/v1/items", headers={"X-Request-Id": "trace-me-42"})
    assert seen == ["trace-me-42"]


async def test_one_log_line_per_request_with_route_and_request_id(
    client: httpx.AsyncClient,
) -> None:
    with structlog.testing.capture_logs() as logs:
        await client.get("/api/v1/items/nope", headers={"X-Request-Id": "log-me"})
    lines = [e for e in logs if e["event"] == "http"]
    assert len(lines) == 1
    assert lines[0]["route"] == "/api/v1/items/{item_id}" and lines[0]["status"] == 404


async def test_metrics_count_requests_per_route_template(
    client: httpx.AsyncClient, world: World
) -> None:
    for name in ("a", "b", "c"):
        await client.get(f"/api/v1/items/{name}")
    metrics = (await client.get("/metrics")).text
    assert (
        'gateway_http_requests_total{method="GET",route="/api/v1/items/{item_id}",status="404"} 3.0'
        in metrics
    )
    assert "gateway_http_request_duration_seconds_bucket" in metrics
    assert 'gateway_grpc_client_duration_seconds_count{code="NOT_FOUND",method="GetItem"' in metrics
    await client.get("/no/such/page")
    assert 'route="unmatched",status="404"' in (await client.get("/metrics")).text


async def test_unknown_routes_and_methods_answer_json(client: httpx.AsyncClient) -> None:
    missing = await client.get("/api/v1/nothing")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    wrong = await client.delete("/api/v1/config")
    assert wrong.status_code == 405 and json.loads(wrong.text)["error"]["code"]


async def test_pages_are_cross_origin_isolated(client: httpx.AsyncClient) -> None:
    for path in ("/healthz", "/api/v1/config"):
        headers = (await client.get(path)).headers
        assert headers["cross-origin-opener-policy"] == "same-origin"
        assert headers["cross-origin-embedder-policy"] == "require-corp"
        assert headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    "settings_overrides", [{"embedder_addr": "127.0.0.1:1", "fallback_addr": "127.0.0.1:1"}]
)
async def test_ready_without_embedders_or_fallback(client: httpx.AsyncClient) -> None:
    """Embedders may scale to zero and the fallback is optional: the gateway stays ready."""
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    services = ready.json()["services"]
    assert services["catalog"] == services["search"] == "SERVING"
    assert services["embedder"] != "SERVING" and services["fallback"] != "SERVING"


@pytest.mark.parametrize("settings_overrides", [{"metrics_port": 0, "host": "127.0.0.1"}])
async def test_metrics_on_their_own_port_are_not_on_the_public_one(
    client: httpx.AsyncClient, world: World
) -> None:
    await client.get("/api/v1/items/a")
    assert (await client.get("/metrics")).status_code == 404
    endpoint = client.app.state.metrics_endpoint  # type: ignore[attr-defined]
    figures = await scrape(f"http://127.0.0.1:{endpoint.port}/metrics")
    labels = {"method": "GET", "route": "/api/v1/items/{item_id}", "status": "404"}
    assert figures.value("gateway_http_requests_total", **labels) == 1
    assert figures.value("gateway_http_requests_total", route="/metrics", status="404") == 1
