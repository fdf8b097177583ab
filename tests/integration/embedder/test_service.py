"""The embedder service in-process against real NATS, with images from memory:
the queue contract (publish then ack, nak, term, ack-and-forget), the heartbeat,
and the gRPC API."""

from pathlib import Path

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from structlog.testing import capture_logs

from photosearch.common import nats as nats_helpers
from photosearch.common import subjects
from photosearch.common.model_files import ModelFiles
from photosearch.embedder.v1 import embedder_pb2, embedder_pb2_grpc
from photosearch.events.v1 import events_pb2
from photosearch_embedder.config import EmbedderSettings
from photosearch_embedder.manager import ModelManager
from photosearch_embedder.server import build_server
from photosearch_embedder.service import Embedder
from photosearch_embedder.source import MemoryImageSource
from tests.integration.embedder.support import (
    eventually,
    export_for_this_test,
    publish_jobs,
    read_results,
    settings_for,
)
from tests.support.services import start_service, wait_serving
from tests.unit.embedder.models_for_tests import cosine, photo


@pytest.fixture
async def js(nats_server):
    nc = await nats_helpers.connect(nats_server.url, "embedder-test")
    js = nc.jetstream()
    await nats_helpers.ensure_streams(js, nats_helpers.Topology())
    yield js
    await nc.close()


async def start(nats_server, model: ModelFiles, source: MemoryImageSource, **overrides):
    settings = settings_for(nats_server.url, model, **overrides)

    async def build(s):
        return await build_server(s, source)

    return await start_service(build, settings)


async def heartbeat_of(js, worker_id: str) -> events_pb2.WorkerHeartbeat | None:
    kv = await js.key_value(subjects.WORKERS_BUCKET)
    try:
        entry = await kv.get(worker_id)
    except Exception:
        return None
    return events_pb2.WorkerHeartbeat.FromString(entry.value) if entry.value else None


async def test_queued_images_get_vectors_once_and_the_rest_is_settled_right(
    nats_server, js, tiny_model: ModelFiles, tmp_path: Path
) -> None:
    model = export_for_this_test(tiny_model, tmp_path)
    source = MemoryImageSource(
        {"cat": photo("chelsea"), "coffee": photo("coffee", fmt="PNG"), "bad": b"GIF89a broken"}
    )
    service = await start(nats_server, model, source, index_variants="mirror")
    await publish_jobs(
        js, model.model_id, [("cat", "i1"), ("coffee", "i2"), ("bad", "i3"), ("gone", "i4")]
    )

    async def settled() -> bool:
        done, failed = await read_results(js, model.model_id)
        return len(done) == 2 and len(failed) == 1

    await eventually(settled)
    done, failed = await read_results(js, model.model_id)
    by_image = {d.image_id: d for d in done}
    assert by_image["cat"].item_id == "i1"
    assert [e.variant for e in by_image["cat"].embeddings] == ["global", "mirror"]
    assert failed[0].image_id == "bad" and "not a supported image" in failed[0].reason
    assert by_image["cat"].worker_id == failed[0].worker_id == service.lifecycle.worker_id

    direct = Embedder(ModelManager(model))
    expected = await direct.embed_one(photo("chelsea"), [])
    assert cosine(np.array(by_image["cat"].embeddings[0].values), np.array(expected["global"])) > (
        0.99999
    )
    await direct.manager.close()

    async def queue_empty() -> bool:
        return await service.lifecycle.worker.queue_depth() == (0, 0)

    await eventually(queue_empty)  # the gone image was acked, the bad one terminated
    await service.stop()


async def test_jobs_wait_out_an_unavailable_catalog(
    nats_server, js, tiny_model: ModelFiles, tmp_path: Path
) -> None:
    model = export_for_this_test(tiny_model, tmp_path)
    source = MemoryImageSource({"cat": photo("chelsea")})
    source.unavailable = True
    service = await start(nats_server, model, source)
    with capture_logs() as logs:
        await publish_jobs(js, model.model_id, [("cat", "i1")])

        async def put_back() -> bool:
            return any(e["event"] == "worker.retry_later" for e in logs)

        await eventually(put_back)  # nak'ed with a delay: not lost, not failed
    retry = next(e for e in logs if e["event"] == "worker.retry_later")
    assert retry["image_id"] == "cat" and retry["retry_in_s"] == 2.0
    assert await read_results(js, model.model_id) == ([], [])
    source.unavailable = False

    async def embedded() -> bool:
        return len((await read_results(js, model.model_id))[0]) == 1

    await eventually(embedded)
    await service.stop()


async def test_heartbeat_and_info_describe_the_worker_and_shutdown_removes_it(
    nats_server, js, tiny_model: ModelFiles, tmp_path: Path
) -> None:
    model = export_for_this_test(tiny_model, tmp_path)
    service = await start(nats_server, model, MemoryImageSource(), worker_id="worker-a")
    beat = await heartbeat_of(js, "worker-a")
    assert beat is not None
    assert list(beat.capabilities) == ["embed"]
    assert (beat.model_id, beat.dim, beat.device, beat.batch_size) == (model.model_id, 48, "cpu", 4)
    assert beat.version and beat.started_at.seconds > 0 and not beat.model_loaded

    async with service.channel() as channel:
        stub = embedder_pb2_grpc.EmbedderServiceStub(channel)
        info = await stub.Info(embedder_pb2.InfoRequest())
        assert (info.worker_id, info.model_id, info.dim) == ("worker-a", model.model_id, 48)
        assert info.available and not info.loaded and info.quantization == "none"
        assert list(info.index_variants) == ["global"]
        await stub.Embed(embedder_pb2.EmbedRequest(image=photo("coffee")))
        assert (await stub.Info(embedder_pb2.InfoRequest())).loaded

    async def loaded_in_heartbeat() -> bool:
        beat = await heartbeat_of(js, "worker-a")
        return beat is not None and beat.model_loaded

    await eventually(loaded_in_heartbeat, 10)
    await service.stop()
    assert await heartbeat_of(js, "worker-a") is None


async def test_grpc_embed_and_stream(
    nats_server, js, tiny_model: ModelFiles, tmp_path: Path
) -> None:
    model = export_for_this_test(tiny_model, tmp_path)
    service = await start(nats_server, model, MemoryImageSource())
    async with service.channel() as channel:
        stub = embedder_pb2_grpc.EmbedderServiceStub(channel)
        one = await stub.Embed(
            embedder_pb2.EmbedRequest(image=photo("chelsea"), variants=["mirror"])
        )
        assert (one.model_id, one.dim) == (model.model_id, 48)
        assert [e.variant for e in one.embeddings] == ["global", "mirror"]
        assert abs(np.linalg.norm(one.embeddings[0].values) - 1.0) < 1e-5

        with pytest.raises(grpc.aio.AioRpcError) as error:
            await stub.Embed(embedder_pb2.EmbedRequest(image=b"\x89PNG\r\n\x1a\n broken"))
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await stub.Embed(embedder_pb2.EmbedRequest(image=photo("chelsea"), variants=["x"]))
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "'global', 'mirror' or 'crop:F'" in (error.value.details() or "")

        images = [photo("chelsea"), photo("coffee"), b"nope", photo("astronaut")] * 3
        requests = [embedder_pb2.EmbedRequest(image=d, ref=str(i)) for i, d in enumerate(images)]
        replies = [r async for r in stub.EmbedStream(iter(requests))]
    assert [r.ref for r in replies] == [str(i) for i in range(12)]
    assert [bool(r.error) for r in replies] == [False, False, True, False] * 3
    assert replies[0].embeddings[0].values == one.embeddings[0].values
    await service.stop()


async def test_a_model_that_cannot_be_had_keeps_the_service_not_serving_and_says_why(
    nats_server, monkeypatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    settings = EmbedderSettings(
        grpc_port=0,
        nats_url=nats_server.url,
        model="facebook/dinov2-base",
        model_cache_dir=tmp_path / "cache",
    )

    async def build(s):
        return await build_server(s, MemoryImageSource())

    service = await start_service(build, settings, wait=False)
    async with service.channel() as channel:
        health = health_pb2_grpc.HealthStub(channel)
        stub = embedder_pb2_grpc.EmbedderServiceStub(channel)

        async def explained() -> bool:
            try:
                info = await stub.Info(embedder_pb2.InfoRequest(), timeout=2)
            except grpc.aio.AioRpcError:
                return False
            return "facebook/dinov2-base@1 is not available" in info.model_note

        await eventually(explained, 30)
        info = await stub.Info(embedder_pb2.InfoRequest())
        assert not info.available and "EMBED_MODEL_CACHE_DIR" in info.model_note
        reply = await health.Check(health_pb2.HealthCheckRequest())
        assert reply.status == health_pb2.HealthCheckResponse.NOT_SERVING
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await stub.Embed(embedder_pb2.EmbedRequest(image=photo("chelsea")))
        assert error.value.code() == grpc.StatusCode.UNAVAILABLE
    await service.stop()


async def test_a_checkpoint_directory_is_exported_at_start_up_then_served(
    nats_server, js, tiny_checkpoint: Path, tmp_path: Path
) -> None:
    """The path `make run` takes: no export yet, so the service makes one (int8 by
    default, in a child process) and serves it."""
    settings = EmbedderSettings(
        grpc_port=0,
        nats_url=nats_server.url,
        model=str(tiny_checkpoint),
        model_name="test/startup-export",
        model_cache_dir=tmp_path / "cache",
    )

    async def build(s):
        return await build_server(s, MemoryImageSource())

    service = await start_service(build, settings, wait=False)
    await wait_serving(service.address, timeout=180)  # the export takes a while
    async with service.channel() as channel:
        stub = embedder_pb2_grpc.EmbedderServiceStub(channel)
        info = await stub.Info(embedder_pb2.InfoRequest())
        reply = await stub.Embed(embedder_pb2.EmbedRequest(image=photo("coffee")))
    assert (info.model_id, info.quantization) == ("test/startup-export@1", "int8")
    assert len(reply.embeddings[0].values) == 48
    assert (tmp_path / "cache" / service.lifecycle.model.files.directory.name).is_dir()
    await service.stop()
