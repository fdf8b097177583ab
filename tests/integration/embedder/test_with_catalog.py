"""The queue end to end with the real catalog: images added to catalog, embed jobs
queued, workers (one of them a real process, killed mid-batch) fetch the bytes over
gRPC and publish vectors. Every image ends with exactly one result."""

import asyncio
import io
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import psycopg
import pytest
import skimage.data
from cryptography.fernet import Fernet
from PIL import Image

from photosearch.catalog.v1 import catalog_pb2, catalog_pb2_grpc
from photosearch.common import nats as nats_helpers
from photosearch.common import subjects
from photosearch.common.model_files import ModelFiles
from photosearch.events.v1 import events_pb2
from photosearch_catalog.config import CatalogSettings
from photosearch_catalog.server import build_server as build_catalog
from photosearch_embedder.server import build_server as build_embedder
from tests.integration.embedder.support import (
    eventually,
    export_for_this_test,
    publish_jobs,
    read_results,
    settings_for,
)
from tests.support.services import start_service


@pytest.fixture
async def catalog(database_url, nats_server):
    settings = CatalogSettings(
        grpc_port=0,
        database_url=database_url,
        nats_url=nats_server.url,
        settings_key=Fernet.generate_key().decode(),
        shutdown_grace_seconds=1.0,
    )
    service = await start_service(build_catalog, settings)
    yield service
    await service.stop()


@pytest.fixture
async def js(nats_server):
    nc = await nats_helpers.connect(nats_server.url, "embedder-test")
    yield nc.jetstream()
    await nc.close()


def photos(count: int) -> list[bytes]:
    """Distinct camera-sized JPEGs cut from scikit-image's sample photos."""
    sources = [skimage.data.chelsea(), skimage.data.astronaut(), skimage.data.coffee()]
    out = []
    for i in range(count):
        image = Image.fromarray(sources[i % 3])
        w, h = image.size
        image = image.crop((i % 7, i % 5, w - i % 3, h - i % 4)).resize((1600, 1200))
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=85)
        out.append(buffer.getvalue())
    return out


async def add_images(catalog, count: int) -> list[tuple[str, str]]:
    async with catalog.channel() as channel:
        stub = catalog_pb2_grpc.CatalogServiceStub(channel)
        item = await stub.CreateItem(
            catalog_pb2.CreateItemRequest(item=catalog_pb2.Item(name="Sample photos"))
        )
        refs = []
        for i, data in enumerate(photos(count)):
            reply = await stub.AddImage(
                catalog_pb2.AddImageRequest(
                    item_id=item.id,
                    role=catalog_pb2.IMAGE_ROLE_OFFICIAL,
                    data=data,
                    filename=f"p{i}.jpg",
                )
            )
            refs.append((reply.image.id, item.id))
    return refs


async def damage_stored_bytes(database_url: str, image_id: str) -> None:
    """Storage rot after the catalog accepted the image: the bytes become a truncated JPEG."""
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await conn.execute(
            "UPDATE image_blobs SET data = substring(data from 1 for 3000) WHERE image_id = %s",
            (image_id,),
        )


def start_worker_process(settings, worker_id: str, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMBED_")}
    env.update(
        {
            f"EMBED_{k.upper()}": str(v)
            for k, v in settings.model_dump().items()
            if k
            in {
                "grpc_port",
                "nats_url",
                "catalog_addr",
                "model",
                "model_cache_dir",
                "fetch_timeout_seconds",
                "heartbeat_interval_seconds",
                "heartbeat_ttl_seconds",
                "ack_wait_seconds",
                "batch_size",
            }
        }
    )
    env.update(EMBED_WORKER_ID=worker_id, EMBED_LOG_FORMAT="json")
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "photosearch_embedder"], env=env, stdout=out, stderr=out
        )


async def heartbeat(js, worker_id: str) -> events_pb2.WorkerHeartbeat | None:
    try:
        kv = await js.key_value(subjects.WORKERS_BUCKET)
        entry = await kv.get(worker_id)
    except Exception:
        return None
    return events_pb2.WorkerHeartbeat.FromString(entry.value) if entry.value else None


async def test_every_image_gets_one_result_even_when_a_worker_is_killed_mid_batch(
    catalog, js, database_url, nats_server, tiny_model: ModelFiles, tmp_path: Path
) -> None:
    model = export_for_this_test(tiny_model, tmp_path)
    refs = await add_images(catalog, 24)
    corrupt = refs[5][0]
    await damage_stored_bytes(database_url, corrupt)
    settings = settings_for(
        nats_server.url, model, catalog_addr=catalog.address, batch_size=8, ack_wait_seconds=3
    )

    first_results: asyncio.Queue[events_pb2.EmbedCompleted] = asyncio.Queue()

    async def on_completed(msg) -> None:
        done = events_pb2.EmbedCompleted.FromString(msg.data)
        if done.model_id == model.model_id:
            first_results.put_nowait(done)

    watch = await js._nc.subscribe(subjects.EMBED_COMPLETED, cb=on_completed)
    worker_a = start_worker_process(settings, "worker-a", tmp_path / "worker-a.log")
    try:

        async def a_is_online() -> bool:
            return await heartbeat(js, "worker-a") is not None

        await eventually(a_is_online, 60)
        beat = await heartbeat(js, "worker-a")
        assert beat is not None and beat.model_id == model.model_id
        await publish_jobs(js, model.model_id, refs)
        await asyncio.wait_for(first_results.get(), 60)
        worker_a.send_signal(signal.SIGKILL)  # mid-batch: results published, jobs not acked
        worker_a.wait(10)
    finally:
        if worker_a.poll() is None:
            worker_a.kill()
        await watch.unsubscribe()
    done, _ = await read_results(js, model.model_id)
    assert 0 < len(done) < len(refs) - 1, "the worker was not stopped in the middle of its work"

    async def a_expired() -> bool:
        return await heartbeat(js, "worker-a") is None

    await eventually(a_expired, 30)  # no graceful delete: the entry lapsed by itself

    # Two replicas take over; A's un-acked jobs come back to them after ack_wait.
    worker_b = await start_service(build_embedder, settings.model_copy(update={"worker_id": "b"}))
    worker_c = await start_service(build_embedder, settings.model_copy(update={"worker_id": "c"}))

    async def all_settled() -> bool:
        done, failed = await read_results(js, model.model_id)
        return len({d.image_id for d in done}) == len(refs) - 1 and len(failed) >= 1

    await eventually(all_settled, 90)

    async def queue_drained() -> bool:
        return await worker_b.lifecycle.worker.queue_depth() == (0, 0)

    await eventually(queue_drained, 30)
    done, failed = await read_results(js, model.model_id)
    assert Counter(d.image_id for d in done) == Counter(
        {image_id: 1 for image_id, _ in refs if image_id != corrupt}
    )
    assert [(f.image_id, f.item_id) for f in failed] == [(corrupt, refs[5][1])]
    assert "truncated or corrupt" in failed[0].reason
    for result in done:
        (vector,) = [e.values for e in result.embeddings if e.variant == "global"]
        assert len(vector) == 48 and abs(np.linalg.norm(vector) - 1.0) < 1e-4
    assert {d.worker_id for d in done} <= {"worker-a", "b", "c"}
    await worker_b.stop()
    await worker_c.stop()


async def test_replicas_share_the_queue_without_doing_a_job_twice(
    catalog, js, nats_server, tiny_model: ModelFiles, tmp_path: Path
) -> None:
    model = export_for_this_test(tiny_model, tmp_path)
    refs = await add_images(catalog, 16)
    settings = settings_for(
        nats_server.url, model, catalog_addr=catalog.address, batch_size=4, ack_wait_seconds=10
    )
    workers = [
        await start_service(build_embedder, settings.model_copy(update={"worker_id": f"r{i}"}))
        for i in range(2)
    ]
    await publish_jobs(js, model.model_id, refs)

    async def all_done() -> bool:
        return len((await read_results(js, model.model_id))[0]) == len(refs)

    await eventually(all_done, 60)
    # Each job was embedded by exactly one replica (no duplicate was even attempted).
    assert sum(w.lifecycle.worker.processed for w in workers) == len(refs)
    done, _ = await read_results(js, model.model_id)
    assert sorted(d.image_id for d in done) == sorted(image_id for image_id, _ in refs)
    for worker in workers:
        await worker.stop()
