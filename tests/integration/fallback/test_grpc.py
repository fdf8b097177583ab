"""The fallback service as deployed: its real gRPC server (production wiring) reading
the enabled flag and the API key from the real catalog service, calling the real
google-cloud-vision client against the fake Vision server. Each documented status."""

import asyncio
import uuid
from collections.abc import AsyncIterator

import grpc
import pytest
from cryptography.fernet import Fernet
from grpc_health.v1 import health_pb2, health_pb2_grpc

from photosearch.catalog.v1 import catalog_pb2, catalog_pb2_grpc
from photosearch.fallback.v1 import fallback_pb2, fallback_pb2_grpc
from photosearch_catalog.config import CatalogSettings
from photosearch_catalog.server import build_server as build_catalog
from photosearch_devstack.nats_server import NatsServer
from photosearch_devstack.postgres import EmbeddedPostgres
from photosearch_fallback.config import FallbackSettings
from photosearch_fallback.server import build_server as build_fallback
from tests.support.captured_logs import CapturedLogs
from tests.support.fake_vision import RICH_WEB_DETECTION, FakeVision, Reply
from tests.support.fallback import API_KEY
from tests.support.services import RunningService, start_service

Code = grpc.StatusCode


def catalog_settings(postgres: EmbeddedPostgres, nats_server: NatsServer) -> CatalogSettings:
    database = postgres.create_database(f"fallback_catalog_{uuid.uuid4().hex[:8]}")
    return CatalogSettings(
        grpc_port=0,
        database_url=database,
        nats_url=nats_server.url,
        settings_key=Fernet.generate_key().decode(),  # type: ignore[arg-type]
    )


def fallback_settings(catalog: RunningService, endpoint: str, **overrides: object):
    values: dict[str, object] = {
        "grpc_port": 0,
        "catalog_addr": catalog.address,
        "vision_endpoint": endpoint,
        "credentials_cache_seconds": 0,
        "vision_deadline_seconds": 3.0,
        "vision_attempt_timeout_seconds": 0.5,
        "vision_backoff_seconds": 0.02,
        "vision_backoff_max_seconds": 0.1,
        **overrides,
    }
    return FallbackSettings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
async def catalog(postgres, nats_server) -> AsyncIterator[RunningService]:
    running = await start_service(build_catalog, catalog_settings(postgres, nats_server))
    yield running
    await running.stop()


@pytest.fixture(scope="module")
async def fallback(catalog: RunningService, fake_vision_server: FakeVision):
    settings = fallback_settings(catalog, fake_vision_server.endpoint)
    running = await start_service(build_fallback, settings)
    yield running
    await running.stop()


@pytest.fixture(scope="module")
async def channels(catalog: RunningService, fallback: RunningService):
    catalog_channel, fallback_channel = catalog.channel(), fallback.channel()
    yield (
        catalog_pb2_grpc.CatalogServiceStub(catalog_channel),
        fallback_pb2_grpc.FallbackServiceStub(fallback_channel),
    )
    await catalog_channel.close(None)
    await fallback_channel.close(None)


@pytest.fixture
async def admin(channels):
    """Catalog's settings as an admin leaves them: web fallback on, the test key set."""
    stub = channels[0]
    await stub.UpdateSettings(
        catalog_pb2.UpdateSettingsRequest(web_fallback_enabled=True, vision_api_key=API_KEY)
    )
    return stub


@pytest.fixture
def web(channels):
    return channels[1]


async def web_detect(web, photo: bytes, max_results: int = 5):
    return await web.WebDetect(
        fallback_pb2.WebDetectRequest(image=photo, max_results=max_results), timeout=10
    )


async def test_refused_until_an_admin_turns_it_on_and_sets_a_key(
    channels, fake_vision: FakeVision, photo: bytes
) -> None:
    settings, web = channels
    await settings.UpdateSettings(
        catalog_pb2.UpdateSettingsRequest(web_fallback_enabled=False, clear_vision_api_key=True)
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await web_detect(web, photo)
    assert caught.value.code() == Code.FAILED_PRECONDITION
    assert "turned off and no Google Vision API key is set" in (caught.value.details() or "")

    await settings.UpdateSettings(catalog_pb2.UpdateSettingsRequest(web_fallback_enabled=True))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await web_detect(web, photo)
    assert caught.value.code() == Code.FAILED_PRECONDITION
    assert caught.value.details() == (
        "no Google Vision API key is set: an admin can change this in the settings"
    )

    await settings.UpdateSettings(catalog_pb2.UpdateSettingsRequest(vision_api_key=API_KEY))
    await web_detect(web, photo)
    # Only the last call reached Vision, with the key catalog keeps encrypted.
    [request] = fake_vision.requests
    assert request.api_key == API_KEY


async def test_a_rich_reply_becomes_typed_leads(
    admin, web, fake_vision: FakeVision, photo: bytes
) -> None:
    fake_vision.enqueue(Reply.web_detection(RICH_WEB_DETECTION))
    reply = await web_detect(web, photo, max_results=12)
    assert fake_vision.requests[0].max_results == 12
    assert list(reply.best_guess_labels) == ["boba fett kenner 1979"]
    by_type: dict[int, list[fallback_pb2.Lead]] = {}
    for lead in reply.leads:
        by_type.setdefault(lead.type, []).append(lead)
    assert by_type[fallback_pb2.LEAD_TYPE_BEST_GUESS][0].label == "boba fett kenner 1979"
    assert [e.label for e in by_type[fallback_pb2.LEAD_TYPE_WEB_ENTITY]] == [
        "Action Figure",
        "Boba Fett",
        "Kenner",
    ]
    assert by_type[fallback_pb2.LEAD_TYPE_WEB_ENTITY][0].score == pytest.approx(1.23)
    [full] = by_type[fallback_pb2.LEAD_TYPE_FULL_MATCHING_IMAGE]
    assert full.url == "https://images.example.com/boba-fett-1979.jpg"
    assert len(by_type[fallback_pb2.LEAD_TYPE_PARTIAL_MATCHING_IMAGE]) == 1
    page = by_type[fallback_pb2.LEAD_TYPE_PAGE_WITH_MATCHING_IMAGE][0]
    assert page.title == "Boba Fett 1979 Kenner & Palitoy \u2013 figure guide"
    assert page.image_url == "https://collectors.example.net/img/boba.jpg"
    assert len(by_type[fallback_pb2.LEAD_TYPE_VISUALLY_SIMILAR_IMAGE]) == 2


async def test_an_empty_reply_gives_no_leads(admin, web, fake_vision: FakeVision, photo) -> None:
    fake_vision.enqueue(Reply.empty())
    reply = await web_detect(web, photo)
    assert list(reply.leads) == [] and list(reply.best_guess_labels) == []


@pytest.mark.parametrize(
    ("replies", "code", "message"),
    [
        ([Reply.error(403, "API_KEY_SERVICE_BLOCKED")], Code.PERMISSION_DENIED, "key was rejected"),
        ([Reply.key_invalid()], Code.UNAUTHENTICATED, "key was rejected"),
        ([Reply.error(429)] * 3, Code.RESOURCE_EXHAUSTED, "quota is used up"),
        ([Reply.error(500)] * 3, Code.UNAVAILABLE, "Google Vision is failing (HTTP 500"),
        ([Reply.slow(5)] * 3, Code.DEADLINE_EXCEEDED, "did not answer within"),
        ([Reply.image_error(3, "Bad image data.")], Code.INVALID_ARGUMENT, "Bad image data"),
    ],
    ids=["403", "bad-key", "429", "500", "timeout", "bad-image"],
)
async def test_vision_failures_have_documented_statuses(
    admin, web, fake_vision: FakeVision, photo: bytes, replies, code, message
) -> None:
    fake_vision.enqueue(*replies)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await web_detect(web, photo)
    assert caught.value.code() == code
    assert message in (caught.value.details() or "")
    assert API_KEY not in (caught.value.details() or "")


async def test_an_oversized_or_broken_photo_is_invalid(admin, web, fake_vision, photo) -> None:
    cases = [
        (b"", "the image is empty"),
        (b"GIF89a not really", "not a supported image"),
        (photo[: len(photo) // 2], "truncated or corrupt"),
        (b"\xff\xd8" + bytes(26 * 1024 * 1024), "the limit is 25 MB"),
    ]
    for data, message in cases:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await web_detect(web, data)
        assert caught.value.code() == Code.INVALID_ARGUMENT
        assert message in (caught.value.details() or "")
    assert fake_vision.requests == []


async def test_the_key_is_never_logged_by_either_service(
    admin, web, fake_vision: FakeVision, photo: bytes, captured_logs: CapturedLogs
) -> None:
    fake_vision.enqueue(
        Reply.error(503), Reply.web_detection(RICH_WEB_DETECTION), Reply.key_invalid()
    )
    await web_detect(web, photo)
    with pytest.raises(grpc.aio.AioRpcError):
        await web_detect(web, photo)
    names = captured_logs.names()
    assert "rpc" in names and "web_detect" in names and "vision.attempt_failed" in names
    assert API_KEY not in captured_logs.text()


async def test_the_key_is_cached_but_a_corrected_key_applies_at_once(
    catalog: RunningService, fake_vision: FakeVision, photo: bytes, captured_logs: CapturedLogs
) -> None:
    settings = fallback_settings(catalog, fake_vision.endpoint, credentials_cache_seconds=300)
    running = await start_service(build_fallback, settings)
    catalog_channel, fallback_channel = catalog.channel(), running.channel()
    admin = catalog_pb2_grpc.CatalogServiceStub(catalog_channel)
    web = fallback_pb2_grpc.FallbackServiceStub(fallback_channel)
    try:
        await admin.UpdateSettings(
            catalog_pb2.UpdateSettingsRequest(web_fallback_enabled=True, vision_api_key="AIza-typo")
        )
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await web_detect(web, photo)
        assert caught.value.code() == Code.UNAUTHENTICATED
        await admin.UpdateSettings(catalog_pb2.UpdateSettingsRequest(vision_api_key=API_KEY))
        await web_detect(web, photo)  # read again after the rejection, not after 300 s
        await web_detect(web, photo)  # cached
        reads = [
            e
            for e in captured_logs.events
            if str(e.get("rpc", "")).endswith("/GetVisionCredentials")
        ]
        assert len(reads) == 2
        assert [r.api_key for r in fake_vision.requests] == ["AIza-typo", API_KEY, API_KEY]
    finally:
        await catalog_channel.close(None)
        await fallback_channel.close(None)
        await running.stop()


async def test_health_follows_catalog(
    postgres, nats_server, fake_vision_server: FakeVision
) -> None:
    catalog = await start_service(build_catalog, catalog_settings(postgres, nats_server))
    fallback = await start_service(
        build_fallback, fallback_settings(catalog, fake_vision_server.endpoint)
    )
    async with grpc.aio.insecure_channel(fallback.address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        request = health_pb2.HealthCheckRequest(service="photosearch.fallback.v1.FallbackService")
        assert (await health.Check(request)).status == health_pb2.HealthCheckResponse.SERVING
        await catalog.stop()
        status = health_pb2.HealthCheckResponse.SERVING
        for _ in range(100):  # readiness is polled every 0.2 s in tests
            status = (await health.Check(request)).status
            if status == health_pb2.HealthCheckResponse.NOT_SERVING:
                break
            await asyncio.sleep(0.1)
        assert status == health_pb2.HealthCheckResponse.NOT_SERVING
        web = fallback_pb2_grpc.FallbackServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await web_detect(web, b"any photo")
        assert caught.value.code() == Code.UNAVAILABLE
        assert "cannot read the web fallback settings from catalog" in (
            caught.value.details() or ""
        )
    await fallback.stop()
