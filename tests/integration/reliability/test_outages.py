"""Infrastructure goes away under the running mesh (real processes): NATS for 30 s,
Postgres crashing, a service hung by SIGSTOP. Searches keep working where they can,
every failure is a quick 503 with Retry-After, nothing is lost or doubled, and no
service needs a restart."""

import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import httpx
import pytest

from photosearch.catalog.v1 import catalog_pb2, catalog_pb2_grpc
from photosearch.search.v1 import search_pb2, search_pb2_grpc
from photosearch_devstack.mesh import Mesh
from tests.support.mesh import assert_same_processes, eventually, photo, service_pids
from tests.support.mesh_api import (
    Api,
    Seed,
    assert_found_by_its_own_vector,
    assert_one_vector_per_image,
    settle,
)
from tests.support.mesh_state import (
    catalog_image_ids,
    images_without_bytes,
    outbox_subjects,
    stored_vector,
)

pytestmark = pytest.mark.slow
NATS_OUTAGE_SECONDS = 30.0


def assert_503_with_retry_after(reply: httpx.Response, service: str) -> None:
    assert reply.status_code == 503, (reply.status_code, reply.text)
    assert int(reply.headers["retry-after"]) >= 1
    error = reply.json()["error"]
    assert error["code"] == "unavailable" and service in error["message"], error
    assert error["request_id"] == reply.headers["x-request-id"]


def wait_serving(mesh: Mesh, *services: str, timeout: float = 60.0) -> None:
    eventually(
        lambda: all(mesh.service_status(s) == "SERVING" for s in services),
        timeout,
        f"{services} SERVING again",
    )


def test_a_nats_outage_delays_events_and_loses_none(mesh: Mesh, api: Api, seed: Seed) -> None:
    assert mesh.nats is not None
    pids = service_pids(mesh)
    probe_item, probe_image = seed.items[0]
    probe = stored_vector(mesh, seed.model_id, probe_image)
    added: list[tuple[str, str]] = []
    searches = 0
    mesh.nats.stop()
    try:
        started = time.monotonic()
        while (elapsed := time.monotonic() - started) < NATS_OUTAGE_SECONDS:
            if elapsed >= len(added) * 3.0:  # a new item with a photo every 3 s
                n = len(added)
                added.append(api.add_item_with_photo(f"Outage {n}", photo(100 + n)))
            reply = api.search(seed.model_id, probe, k=3)
            assert reply.status_code == 200, reply.text
            assert reply.json()["candidates"][0]["item"]["id"] == probe_item
            searches += 1
            time.sleep(0.2)
        # Every event is committed and waits in catalog's outbox; catalog still serves.
        assert outbox_subjects(mesh)["catalog.image.added"] == len(added)
        assert mesh.service_status("catalog") == "SERVING"
    finally:
        mesh.nats.start()
    assert len(added) >= 8 and searches >= 20
    settle(api)
    assert outbox_subjects(mesh) == {}
    assert_one_vector_per_image(api, seed.model_id)  # delivered once, stored once
    for item_id, image_id in added:
        assert_found_by_its_own_vector(api, seed.model_id, item_id, image_id)
    assert_same_processes(mesh, pids)  # the clients reconnected by themselves


def nats_outage_states(mesh: Mesh, probe: Any, seconds: float = 4.0) -> list[Any]:
    """`probe()` sampled while NATS is stopped (readiness is re-checked every second)."""
    assert mesh.nats is not None
    samples = []
    mesh.nats.stop()
    try:
        started = time.monotonic()
        while time.monotonic() - started < seconds:
            samples.append(probe())
            time.sleep(0.5)
    finally:
        mesh.nats.start()
        wait_serving(mesh, "catalog", "search", "embedder", "fallback")
    return samples


def test_search_stays_ready_while_nats_is_away(mesh: Mesh, seed: Seed) -> None:
    samples = nats_outage_states(mesh, lambda: mesh.service_status("search"))
    assert set(samples) == {"SERVING"}, samples


def test_gateway_stays_ready_while_nats_is_away(mesh: Mesh, api: Api, seed: Seed) -> None:
    samples = nats_outage_states(mesh, lambda: api.http.get("/readyz").status_code)
    assert set(samples) == {200}, samples


def test_a_postgres_crash_takes_catalog_and_search_out_until_it_is_back(
    mesh: Mesh, api: Api, seed: Seed
) -> None:
    assert mesh.postgres is not None
    pids = service_pids(mesh)
    probe = stored_vector(mesh, seed.model_id, seed.items[0][1])
    written: list[tuple[str, str]] = []
    refused: list[httpx.Response] = []
    stop = threading.Event()

    def writer() -> None:
        """Adds items with photos all along; records what was answered."""
        with httpx.Client(base_url=mesh.gateway_url, timeout=30, headers=mesh.admin_auth) as http:
            n = 0
            while not stop.is_set():
                n += 1
                item = http.post("/api/v1/items", json={"name": f"Crash {n}"})
                if item.status_code != 201:
                    refused.append(item)
                    time.sleep(0.2)
                    continue
                files = {"photo": ("p.jpg", photo(300 + n), "image/jpeg")}
                added = http.post(f"/api/v1/items/{item.json()['id']}/images", files=files)
                if added.status_code == 201:
                    written.append((item.json()["id"], added.json()["image"]["id"]))
                else:
                    refused.append(added)
                time.sleep(0.1)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        eventually(lambda: len(written) >= 2, 30, "writes before the crash")
        mesh.postgres.stop(mode="immediate")  # a crash: no shutdown checkpoint
        try:
            eventually(
                lambda: {mesh.service_status(s) for s in ("catalog", "search")} == {"NOT_SERVING"},
                15,
                "catalog and search NOT_SERVING",
            )
            assert_503_with_retry_after(api.search(seed.model_id, probe), "")
            assert_503_with_retry_after(api.http.get("/api/v1/items"), "catalog")
        finally:
            mesh.postgres.start()
        wait_serving(mesh, "catalog", "search")
        count = len(written)
        eventually(lambda: len(written) >= count + 2, 60, "writes after the restart")
    finally:
        stop.set()
        thread.join(60)
    for reply in refused:  # whatever was refused meanwhile was refused properly
        assert reply.status_code == 503 and reply.headers["retry-after"], reply.text
    settle(api)
    assert images_without_bytes(mesh) == 0  # no half-written image
    assert {image_id for _, image_id in written} <= catalog_image_ids(mesh)
    assert_one_vector_per_image(api, seed.model_id)
    item_id, image_id = written[-1]
    # The first searches right after a restart are test_searches_succeed_right_after_...'s.
    flush_search_pool(api, seed)
    assert_found_by_its_own_vector(api, seed.model_id, item_id, image_id)
    assert_same_processes(mesh, pids)


def hung_calls(mesh: Mesh, service: str, call: Any, count: int = 16) -> list[httpx.Response]:
    """`count` concurrent requests while `service` is frozen (SIGSTOP), then thawed."""
    process = mesh.processes[service]
    os.kill(process.pid, signal.SIGSTOP)
    try:
        time.sleep(2.5)  # past the gateway's 2 s cache of settings and active model
        with ThreadPoolExecutor(16) as pool:
            return list(pool.map(call, range(count)))
    finally:
        os.kill(process.pid, signal.SIGCONT)
        wait_serving(mesh, service)


def client(mesh: Mesh) -> httpx.Client:
    # The client's own timeout is 5x the gateway's 2 s deadline: a hang fails.
    return httpx.Client(base_url=mesh.gateway_url, timeout=10)


def test_a_hung_catalog_gets_a_503_with_retry_after_not_a_hang(
    mesh: Mesh, api: Api, seed: Seed
) -> None:
    item_id, _ = seed.items[1]

    def call(_: int) -> httpx.Response:
        with client(mesh) as http:
            return http.get(f"/api/v1/items/{item_id}")

    assert call(0).status_code == 200
    replies = hung_calls(mesh, "catalog", call)
    for reply in replies:
        assert_503_with_retry_after(reply, "catalog")
        assert "did not answer in time" in reply.json()["error"]["message"]
    assert call(0).status_code == 200


def test_a_hung_search_gets_a_503_with_retry_after_not_a_hang(
    mesh: Mesh, api: Api, seed: Seed
) -> None:
    vector = stored_vector(mesh, seed.model_id, seed.items[1][1])

    def call(_: int) -> httpx.Response:
        with client(mesh) as http:
            return http.post("/api/v1/search", json={"model_id": seed.model_id, "vector": vector})

    assert call(0).status_code == 200
    replies = hung_calls(mesh, "search", call)
    for reply in replies:
        assert_503_with_retry_after(reply, "search")
    assert call(0).status_code == 200


def postgres_outage_codes(mesh: Mesh, seed: Seed) -> dict[str, str]:
    """What catalog and search answer, called directly, while Postgres is stopped."""
    assert mesh.postgres is not None
    item_id, image_id = seed.items[3]
    vector = stored_vector(mesh, seed.model_id, image_id)
    codes: dict[str, str] = {}
    mesh.postgres.stop()
    try:
        with grpc.insecure_channel(mesh.address("catalog")) as channel:
            stub = catalog_pb2_grpc.CatalogServiceStub(channel)
            codes["catalog"] = rpc_code(
                lambda: stub.GetItem(catalog_pb2.GetItemRequest(id=item_id), timeout=15)
            )
        with grpc.insecure_channel(mesh.address("search")) as channel:
            search = search_pb2_grpc.SearchServiceStub(channel)
            request = search_pb2.SearchRequest(model_id=seed.model_id, vector=vector, k=3)
            codes["search"] = rpc_code(lambda: search.Search(request, timeout=15))
    finally:
        mesh.postgres.start()
        wait_serving(mesh, "catalog", "search", "fallback")
    return codes


def rpc_code(call: Any) -> str:
    try:
        call()
    except grpc.RpcError as exc:
        return str(exc.code().name)
    return "OK"


def test_while_postgres_is_away_catalog_and_search_answer_unavailable(
    mesh: Mesh, api: Api, seed: Seed
) -> None:
    codes = postgres_outage_codes(mesh, seed)
    flush_search_pool(api, seed)
    assert codes == {"catalog": "UNAVAILABLE", "search": "UNAVAILABLE"}, codes


def test_searches_succeed_right_after_postgres_restarts(mesh: Mesh, api: Api, seed: Seed) -> None:
    assert mesh.postgres is not None
    item_id, image_id = seed.items[2]
    mesh.postgres.stop()
    mesh.postgres.start()
    wait_serving(mesh, "catalog", "search")
    try:
        for _ in range(12):  # more than the search pool's connections
            assert_found_by_its_own_vector(api, seed.model_id, item_id, image_id)
    finally:
        flush_search_pool(api, seed)


def flush_search_pool(api: Api, seed: Seed) -> None:
    """Use up any connections a Postgres restart broke in search's read pool (see the test
    above), so that later tests start from a working pool."""
    vector = stored_vector(api.mesh, seed.model_id, seed.items[0][1])
    for _ in range(16):
        api.search(seed.model_id, vector)
