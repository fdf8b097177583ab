"""Services stopped under load in the running mesh (real processes). SIGTERM: requests
already in the service's hands finish (held there by a lock the test owns until the
service is refusing new calls), the process exits cleanly, nothing is acknowledged that
was not done. SIGKILL of an embedder mid-batch: every image still ends with exactly one
vector in search."""

import asyncio
import os
import signal
import subprocess
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import grpc
import httpx
import pytest

from photosearch.catalog.v1 import catalog_pb2, catalog_pb2_grpc
from photosearch.common import subjects
from photosearch.fallback.v1 import fallback_pb2, fallback_pb2_grpc
from photosearch.search.v1 import search_pb2, search_pb2_grpc
from photosearch_catalog.outbox import OUTBOX_WRITE_LOCK
from photosearch_devstack.mesh import Mesh
from tests.support.fake_vision import RICH_WEB_DETECTION, FakeVision, Reply
from tests.support.mesh import eventually, photo, restart
from tests.support.mesh_api import (
    Api,
    Seed,
    assert_found_by_its_own_vector,
    assert_one_vector_per_image,
    settle,
)
from tests.support.mesh_state import (
    database_url,
    embed_queue,
    embed_results,
    images_without_copy_hash,
    locked,
    stored_vector,
    vector_table,
    vectors_per_image,
    waiting_on_locks,
)
from tests.support.reliability import VISION_KEY

pytestmark = pytest.mark.slow
HOLD_ADDS = f"SELECT pg_advisory_xact_lock({OUTBOX_WRITE_LOCK})"  # every AddImage takes it


def terminate_and_wait_until_refusing(mesh: Mesh, service: str) -> subprocess.Popen[bytes]:
    """SIGTERM, then wait until the service no longer takes new calls."""
    process = mesh.processes[service]
    process.send_signal(signal.SIGTERM)
    if service == "gateway":

        def refusing() -> bool:
            try:
                httpx.get(f"{mesh.gateway_url}/healthz", timeout=1)
            except httpx.TransportError:
                return True
            return False

        eventually(refusing, 10, "the gateway refusing new connections")
    else:
        eventually(
            lambda: mesh.service_status(service) == "UNAVAILABLE",
            10,
            f"{service} refusing new calls",
        )
    return process


def results(futures: list[Future[Any]]) -> list[Any]:
    return [f.result(timeout=60) for f in futures]


def test_catalog_finishes_the_adds_in_flight_when_told_to_stop(
    mesh: Mesh, api: Api, seed: Seed
) -> None:
    item_id = api.create_item("Added while catalog stops")
    photos = [photo(400 + n) for n in range(4)]
    with (
        grpc.insecure_channel(mesh.address("catalog")) as channel,
        ThreadPoolExecutor(len(photos)) as pool,
    ):
        stub = catalog_pb2_grpc.CatalogServiceStub(channel)
        with locked(database_url(mesh, "catalog"), HOLD_ADDS):
            futures = [
                pool.submit(
                    stub.AddImage,
                    catalog_pb2.AddImageRequest(
                        item_id=item_id,
                        role=catalog_pb2.IMAGE_ROLE_UPLOADED,
                        data=data,
                        filename=f"{n}.jpg",
                    ),
                    timeout=60,
                )
                for n, data in enumerate(photos)
            ]
            eventually(lambda: waiting_on_locks(mesh, "catalog") == len(photos), 30, "adds held")
            process = terminate_and_wait_until_refusing(mesh, "catalog")
            assert not any(f.done() for f in futures)
        added = results(futures)
    assert [reply.created for reply in added] == [True] * len(photos)
    assert process.wait(30) == 0
    restart(mesh, "catalog")
    settle(api)
    assert_one_vector_per_image(api, seed.model_id)  # their events went out, once
    for reply in added:
        assert_found_by_its_own_vector(api, seed.model_id, item_id, reply.image.id)


def test_search_finishes_the_searches_in_flight_when_told_to_stop(
    mesh: Mesh, api: Api, seed: Seed
) -> None:
    item_id, image_id = seed.items[4]
    request = search_pb2.SearchRequest(
        model_id=seed.model_id, vector=stored_vector(mesh, seed.model_id, image_id), k=3
    )
    hold = f"LOCK TABLE {vector_table(mesh, seed.model_id)} IN ACCESS EXCLUSIVE MODE"
    with (
        grpc.insecure_channel(mesh.address("search")) as channel,
        ThreadPoolExecutor(4) as pool,
    ):
        stub = search_pb2_grpc.SearchServiceStub(channel)
        with locked(database_url(mesh, "search"), hold):
            futures = [pool.submit(stub.Search, request, timeout=60) for _ in range(4)]
            eventually(lambda: waiting_on_locks(mesh, "search") >= 4, 30, "searches held")
            process = terminate_and_wait_until_refusing(mesh, "search")
            assert not any(f.done() for f in futures)
        replies = results(futures)
    for reply in replies:
        assert reply.candidates[0].item_id == item_id
    assert process.wait(30) == 0
    restart(mesh, "search")
    assert_found_by_its_own_vector(api, seed.model_id, item_id, image_id)


def test_the_gateway_finishes_the_uploads_in_flight_when_told_to_stop(
    mesh: Mesh, api: Api, seed: Seed
) -> None:
    item_id = api.create_item("Uploaded while the gateway stops")

    def upload(n: int) -> httpx.Response:
        with httpx.Client(base_url=mesh.gateway_url, timeout=60, headers=mesh.admin_auth) as http:
            files = {"photo": (f"{n}.jpg", photo(500 + n), "image/jpeg")}
            return http.post(f"/api/v1/items/{item_id}/images", files=files)

    with ThreadPoolExecutor(3) as pool:
        with locked(database_url(mesh, "catalog"), HOLD_ADDS):
            futures = [pool.submit(upload, n) for n in range(3)]
            eventually(lambda: waiting_on_locks(mesh, "catalog") == 3, 30, "uploads held")
            process = terminate_and_wait_until_refusing(mesh, "gateway")
            assert not any(f.done() for f in futures)
        replies = results(futures)
    assert [r.status_code for r in replies] == [201, 201, 201], [r.text for r in replies]
    # uvicorn re-raises the signal once its graceful shutdown is done.
    assert process.wait(30) in (0, -signal.SIGTERM)
    restart(mesh, "gateway")
    settle(api)
    for reply in replies:
        assert_found_by_its_own_vector(api, seed.model_id, item_id, reply.json()["image"]["id"])


def test_fallback_finishes_the_web_lookups_in_flight_when_told_to_stop(
    mesh: Mesh, api: Api, vision: FakeVision
) -> None:
    api.settings(web_fallback_enabled=True, vision_api_key=VISION_KEY)
    vision.reset()
    vision.set_default(Reply.slow(6.0, Reply.web_detection(RICH_WEB_DETECTION)))
    request = fallback_pb2.WebDetectRequest(image=photo(1), max_results=5)
    try:
        with (
            grpc.insecure_channel(mesh.address("fallback")) as channel,
            ThreadPoolExecutor(3) as pool,
        ):
            stub = fallback_pb2_grpc.FallbackServiceStub(channel)
            futures = [pool.submit(stub.WebDetect, request, timeout=60) for _ in range(3)]
            vision.wait_for_requests(3, timeout=30)  # all three are waiting on "Google"
            process = terminate_and_wait_until_refusing(mesh, "fallback")
            assert not any(f.done() for f in futures)
            replies = results(futures)
    finally:
        vision.reset()
    assert [list(r.best_guess_labels) for r in replies] == [["boba fett kenner 1979"]] * 3
    assert process.wait(30) == 0
    restart(mesh, "fallback")


def stop_an_embedder_holding_batches(
    mesh: Mesh, api: Api, seed: Seed, queued: int = 12
) -> tuple[list[str], int, int]:
    """Queue `queued` jobs (more than a worker takes at once), let a worker take its
    batches, hold them (their fetches wait on a lock), SIGTERM it, then let them go.
    Returns (image ids, jobs it held when told to stop, jobs left in the queue)."""
    mesh.stop_service("embedder")
    item_id = api.create_item("Queued while no embedder runs")
    images = []
    for n in range(queued):
        reply = api.add_photo(item_id, photo(600 + n))
        assert reply.status_code == 201, reply.text
        images.append(reply.json()["image"]["id"])
    eventually(lambda: embed_queue(mesh, seed.model_id) == (queued, 0), 30, "jobs queued")
    # Catalog's copy hasher reads the new photos' bytes too: done before the lock, so the
    # only readers waiting on it are the embedder's fetches.
    eventually(lambda: images_without_copy_hash(mesh) == 0, 30, "the photos hashed")

    def in_hand() -> int:
        waiting, taken = embed_queue(mesh, seed.model_id)
        held = waiting > 0 and taken > 0 and waiting_on_locks(mesh, "catalog") == taken
        return taken if held else 0

    with locked(database_url(mesh, "catalog"), "LOCK TABLE image_blobs IN ACCESS EXCLUSIVE MODE"):
        mesh.start_service("embedder")
        taken = eventually(in_hand, 60, "batches taken and held")
        time.sleep(1.0)  # a worker that were to take more would have done so by now
        assert in_hand() == taken
        process = terminate_and_wait_until_refusing(mesh, "embedder")
    assert process.wait(60) == 0
    waiting, unacked = embed_queue(mesh, seed.model_id)
    assert unacked == 0  # every job it took was settled before it exited
    return images, taken, waiting


def test_an_embedder_told_to_stop_acks_only_what_it_did(mesh: Mesh, api: Api, seed: Seed) -> None:
    images, _, waiting = stop_an_embedder_holding_batches(mesh, api, seed)
    done = len(images) - waiting

    def stored() -> bool:
        return sum(vectors_per_image(mesh, seed.model_id)[i] for i in images) == done

    eventually(stored, 30, "a vector in search for every job the worker acked")
    restart(mesh, "embedder")
    settle(api)
    assert_one_vector_per_image(api, seed.model_id)


def test_an_embedder_told_to_stop_takes_no_new_batch(mesh: Mesh, api: Api, seed: Seed) -> None:
    images, taken, waiting = stop_an_embedder_holding_batches(mesh, api, seed)
    try:
        assert waiting == len(images) - taken
    finally:
        restart(mesh, "embedder")
        settle(api)


def kill_on_first_result(nats_url: str, model_id: str, pid: int) -> threading.Event:
    """SIGKILL `pid` from inside the NATS callback of the first result it publishes."""
    killed, ready = threading.Event(), threading.Event()

    async def watch() -> None:
        import nats

        nc = await nats.connect(nats_url)
        done = asyncio.Event()

        async def on_result(msg: Any) -> None:
            if not killed.is_set():
                os.kill(pid, signal.SIGKILL)
                killed.set()
                done.set()

        await nc.subscribe(subjects.EMBED_COMPLETED, cb=on_result)
        ready.set()
        await asyncio.wait_for(done.wait(), 120)
        await nc.close()

    threading.Thread(target=asyncio.run, args=(watch(),), daemon=True).start()
    assert ready.wait(10)
    return killed


def test_an_embedder_killed_mid_batch_leaves_exactly_one_vector_per_image(
    mesh: Mesh, api: Api, seed: Seed
) -> None:
    assert mesh.nats is not None
    mesh.stop_service("embedder")
    item_id = api.create_item("Embedded by a worker that gets killed")
    images = []
    for n in range(16):
        reply = api.add_photo(item_id, photo(700 + n, size=(1024, 768)))
        assert reply.status_code == 201, reply.text
        images.append(reply.json()["image"]["id"])
    eventually(lambda: embed_queue(mesh, seed.model_id)[0] == 16, 30, "16 jobs queued")
    process = mesh.start_service("embedder")
    killed = kill_on_first_result(mesh.nats.url, seed.model_id, process.pid)
    assert killed.wait(120), "the worker published no result"
    process.wait(10)
    done_at_kill = sum(embed_results(mesh, seed.model_id)[i] for i in images)
    assert 0 < done_at_kill < len(images), "not killed in the middle of its work"
    restart(mesh, "embedder")  # a new worker; the dead one's jobs come back after ack_wait
    settle(api)
    assert_one_vector_per_image(api, seed.model_id)
    results_per_image = embed_results(mesh, seed.model_id)
    assert [results_per_image[i] for i in images] == [1] * len(images)  # no result twice
    for image_id in images[::5]:
        assert_found_by_its_own_vector(api, seed.model_id, item_id, image_id)
