"""Limits hold on the running mesh: a burst from one client is cut at its burst size
(others are not affected), and request sizes are bounded at every entrance: the
gateway's JSON and upload limits whether or not a length is declared, each service's
own image limit, and gRPC's message limit. The services keep running."""

import math
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import grpc
import httpx
import pytest

from photosearch.catalog.v1 import catalog_pb2, catalog_pb2_grpc
from photosearch.embedder.v1 import embedder_pb2, embedder_pb2_grpc
from photosearch.fallback.v1 import fallback_pb2, fallback_pb2_grpc
from photosearch_devstack.mesh import Mesh
from tests.support.mesh import assert_same_processes, service_pids
from tests.support.mesh_api import Api, Seed
from tests.support.mesh_state import catalog_image_ids, stored_vector
from tests.support.security import new_client

pytestmark = pytest.mark.slow
SEARCH_BURST, SEARCH_PER_SECOND = 30, 120 / 60  # the shipped defaults
FALLBACK_BURST, FALLBACK_PER_SECOND = 3, 10 / 60
JSON_LIMIT = 256 * 1024
# Searches may carry four full grids of local descriptors (docs/api.md).
SEARCH_LIMIT = 800 * 1024
UPLOAD_LIMIT = 25 * 1024 * 1024


def rate_limited_count(api: Api, limit: str) -> float:
    for line in api.http.get("/metrics").text.splitlines():
        if line.startswith(f'gateway_rate_limited_total{{limit="{limit}"}}'):
            return float(line.split()[-1])
    return 0.0


def burst(send: Callable[[int], httpx.Response], count: int) -> tuple[list[httpx.Response], float]:
    started = time.monotonic()
    with ThreadPoolExecutor(16) as pool:
        replies = list(pool.map(send, range(count)))
    return replies, time.monotonic() - started


def assert_cut_at_the_burst(
    replies: list[httpx.Response], elapsed: float, burst_size: int, per_second: float
) -> None:
    ok = [r for r in replies if r.status_code == 200]
    limited = [r for r in replies if r.status_code == 429]
    assert len(ok) + len(limited) == len(replies), [r.text for r in replies]
    # The burst, plus what the bucket refilled while the burst was being answered.
    assert burst_size <= len(ok) <= burst_size + math.ceil(per_second * elapsed) + 1, len(ok)
    for reply in limited:
        assert int(reply.headers["retry-after"]) >= 1
        assert reply.json()["error"]["code"] == "rate_limited"


def test_a_burst_of_searches_from_one_client_is_cut_at_the_burst_size(
    mesh: Mesh, api: Api, seed: Seed
) -> None:
    vector = stored_vector(mesh, seed.model_id, seed.items[0][1])
    body = {"model_id": seed.model_id, "vector": vector}
    client = new_client()
    counted_before = rate_limited_count(api, "search")

    def send(_: int) -> httpx.Response:
        return api.http.post("/api/v1/search", json=body, headers=client)

    replies, elapsed = burst(send, 90)
    assert_cut_at_the_burst(replies, elapsed, SEARCH_BURST, SEARCH_PER_SECOND)
    limited = sum(r.status_code == 429 for r in replies)
    assert rate_limited_count(api, "search") == counted_before + limited
    # Another client is not held back by the first one's burst.
    other = api.http.post("/api/v1/search", json=body, headers=new_client())
    assert other.status_code == 200, other.text


def test_a_burst_of_web_lookups_from_one_client_is_cut_at_the_burst_size(
    api: Api, seed: Seed
) -> None:
    photo = api.http.get(f"/api/v1/images/{seed.items[0][1]}").content
    client = new_client()

    def send(_: int) -> httpx.Response:
        files = {"photo": ("p.jpg", photo, "image/jpeg")}
        return api.http.post("/api/v1/fallback/web", files=files, headers=client)

    replies, elapsed = burst(send, 12)
    assert_cut_at_the_burst(replies, elapsed, FALLBACK_BURST, FALLBACK_PER_SECOND)


def chunks(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    """A body sent without Content-Length (chunked transfer encoding)."""
    sent = 0
    while sent < total:
        yield b"0" * min(size, total - sent)
        sent += size


def multipart_chunks(photo_bytes: int) -> Iterator[bytes]:
    """A well-formed multipart upload of a `photo_bytes` photo, without Content-Length."""
    yield (
        b'--x\r\nContent-Disposition: form-data; name="photo"; filename="big.jpg"\r\n'
        b"Content-Type: image/jpeg\r\n\r\n\xff\xd8\xff"
    )
    yield from chunks(photo_bytes)
    yield b"\r\n--x--\r\n"


def assert_too_large(reply: httpx.Response) -> None:
    assert reply.status_code == 413, (reply.status_code, reply.text[:300])
    assert reply.json()["error"]["code"] == "too_large"


def test_bodies_over_the_gateways_limits_are_refused_with_a_413(
    mesh: Mesh, api: Api, seed: Seed
) -> None:
    pids = service_pids(mesh)
    images_before = catalog_image_ids(mesh)
    json_headers = {"content-type": "application/json", **new_client()}
    big_json = b'{"model_id": "m", "vector": [' + b"0.1," * (SEARCH_LIMIT // 4) + b"0.1]}"
    assert_too_large(api.http.post("/api/v1/search", content=big_json, headers=json_headers))
    assert_too_large(
        api.http.post("/api/v1/search", content=chunks(SEARCH_LIMIT + 1), headers=json_headers)
    )
    assert_too_large(
        api.http.post("/api/v1/items", content=chunks(JSON_LIMIT + 1), headers=json_headers)
    )
    item_id = seed.items[0][0]
    huge = os.urandom(UPLOAD_LIMIT + 128 * 1024)
    files = {"photo": ("huge.jpg", huge, "image/jpeg")}
    assert_too_large(api.http.post(f"/api/v1/items/{item_id}/images", files=files))
    assert_too_large(api.http.post("/api/v1/fallback/web", files=files, headers=new_client()))
    # A photo just over the limit inside a body the framing allowance lets through.
    just_over = {"photo": ("over.jpg", huge[: UPLOAD_LIMIT + 1], "image/jpeg")}
    reply = api.http.post(f"/api/v1/items/{item_id}/images", files=just_over)
    assert_too_large(reply)
    assert "25 MB" in reply.json()["error"]["message"]
    streamed = api.http.post(
        f"/api/v1/items/{item_id}/images",
        content=multipart_chunks(UPLOAD_LIMIT + 256 * 1024),
        headers={"content-type": "multipart/form-data; boundary=x"},
    )
    assert_too_large(streamed)
    assert catalog_image_ids(mesh) == images_before
    assert_same_processes(mesh, pids)


def test_each_service_bounds_the_photos_it_is_sent_directly(mesh: Mesh, seed: Seed) -> None:
    pids = service_pids(mesh)
    over_image_limit = os.urandom(UPLOAD_LIMIT + 1024)  # over the services' 25 MiB
    over_grpc_limit = os.urandom(65 * 1024 * 1024)  # over gRPC's 64 MB message limit
    item_id = seed.items[0][0]
    calls: dict[str, Callable[[grpc.Channel, bytes], object]] = {
        "catalog": lambda channel, data: catalog_pb2_grpc.CatalogServiceStub(channel).AddImage(
            catalog_pb2.AddImageRequest(
                item_id=item_id, role=catalog_pb2.IMAGE_ROLE_UPLOADED, data=data
            ),
            timeout=60,
        ),
        "embedder": lambda channel, data: embedder_pb2_grpc.EmbedderServiceStub(channel).Embed(
            embedder_pb2.EmbedRequest(image=data), timeout=60
        ),
        "fallback": lambda channel, data: fallback_pb2_grpc.FallbackServiceStub(channel).WebDetect(
            fallback_pb2.WebDetectRequest(image=data), timeout=60
        ),
    }
    options = [("grpc.max_send_message_length", 128 * 1024 * 1024)]
    for service, call in calls.items():
        with grpc.insecure_channel(mesh.address(service), options=options) as channel:
            with pytest.raises(grpc.RpcError) as error:
                call(channel, over_image_limit)
            assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT, service
            assert "the limit is" in (error.value.details() or ""), error.value.details()
            with pytest.raises(grpc.RpcError) as error:
                call(channel, over_grpc_limit)
            assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, service
        assert mesh.service_status(service) == "SERVING"
    assert_same_processes(mesh, pids)


def test_oversized_headers_are_refused(mesh: Mesh, api: Api) -> None:
    pids = service_pids(mesh)
    try:
        reply = httpx.get(
            f"{mesh.gateway_url}/healthz", headers={"X-Padding": "x" * 1_000_000}, timeout=30
        )
        refused = 400 <= reply.status_code < 500
    except httpx.RemoteProtocolError:
        refused = True  # the server closed the connection instead of answering
    assert api.http.get("/healthz").status_code == 200
    assert_same_processes(mesh, pids)
    assert refused
