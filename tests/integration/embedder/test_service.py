"""The embedder service in-process against real NATS, with images from memory:
the queue contract (publish then ack, nak, term, ack-and-forget), the heartbeat,
and the gRPC API."""

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from PIL import Image
from structlog.testing import capture_logs

from photosearch.common import nats as nats_helpers
from photosearch.common import subjects
from photosearch.common.local import SALIENT_CELLS, from_proto
from photosearch.common.model_files import ModelFiles
from photosearch.embedder.v1 import embedder_pb2, embedder_pb2_grpc
from photosearch.events.v1 import events_pb2
from photosearch_embedder.config import EmbedderSettings
from photosearch_embedder.manager import ModelManager
from photosearch_embedder.server import build_server
from photosearch_embedder.service import Embedder
from tests.integration.embedder.support import (
    eventually,
    export_for_this_test,
    publish_jobs,
    read_results,
    settings_for,
)
from tests.support.embedder import MemoryImageSource
from tests.support.embedder_models import cosine, photo
from tests.support.metrics import scrape
from tests.support.services import RunningService, start_service, wait_serving


@pytest.fixture
async def js(nats_server):
    nc = await nats_helpers.connect(nats_server.url, "embedder-test")
    js = nc.jetstream()
    await nats_helpers.ensure_streams(js, nats_helpers.Topology())
    yield js
    await nc.close()


_started: list[RunningService] = []


@pytest.fixture(autouse=True)
async def stop_what_the_test_left_running() -> AsyncIterator[None]:
    """A test that fails before its own stop() leaves its service running in the session's
    event loop, whose teardown would then wait for it until pytest-timeout gives up."""
    yield
    while _started:
        service = _started.pop()
        if not service.task.done():
            with contextlib.suppress(Exception):
                await service.stop()


async def start(
    nats_server, model: ModelFiles, source: MemoryImageSource, serving_timeout=30.0, **overrides
):
    settings = settings_for(nats_server.url, model, **overrides)

    async def build(s):
        return await build_server(s, source)

    service = await start_service(build, settings, serving_timeout=serving_timeout)
    _started.append(service)
    return service


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
    expected = await direct.embed_photo(photo("chelsea"), [], [0])
    assert cosine(
        np.array(by_image["cat"].embeddings[0].values), np.array(expected.vectors["global"])
    ) > (0.99999)
    # The local descriptors of the whole photo as decoded (451 x 300 -> 448 x 294 px,
    # 21 x 32 patches), its 250 most salient cells.
    assert by_image["cat"].HasField("local") and by_image["coffee"].HasField("local")
    grid = from_proto(by_image["cat"].local, dim=48)
    assert (grid.rows, grid.cols, len(grid)) == (21, 32, SALIENT_CELLS)
    assert np.array_equal(grid.index, expected.local[0].index)
    assert np.abs(grid.codes.astype(int) - expected.local[0].codes).max() <= 1
    await direct.manager.close()

    async def queue_empty() -> bool:
        return await service.lifecycle.worker.queue_depth() == (0, 0)

    await eventually(queue_empty)  # the gone image was acked, the bad one terminated
    figures = await scrape(service.metrics_url)
    jobs = {"model_id": model.model_id}
    assert figures.value("embedder_jobs_total", outcome="completed", **jobs) == 2
    assert figures.value("embedder_jobs_total", outcome="failed", **jobs) == 1
    assert figures.value("embedder_jobs_total", outcome="gone", **jobs) == 1
    assert figures.value("embedder_photos_embedded_total", **jobs) == 3  # "bad" too
    assert figures.value("embedder_batch_seconds_count", **jobs) >= 1
    assert figures.value("embedder_model_load_seconds_count", **jobs) == 1
    assert figures.value("embedder_model_ready", **jobs) == 1
    assert figures.value("embedder_model_loaded", **jobs) == 1
    assert figures.value("embedder_runtime_info", engine="onnxruntime", device="cpu", **jobs)
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
    figures = await scrape(service.metrics_url)
    jobs = {"model_id": model.model_id}
    assert figures.value("embedder_jobs_total", outcome="retried", **jobs) >= 1
    assert figures.value("embedder_jobs_redelivered_total", **jobs) >= 1
    assert figures.value("embedder_jobs_total", outcome="completed", **jobs) == 1
    await service.stop()


async def test_heartbeat_and_info_describe_the_worker_and_shutdown_removes_it(
    nats_server, js, tiny_model: ModelFiles, tmp_path: Path
) -> None:
    model = export_for_this_test(tiny_model, tmp_path)
    service = await start(nats_server, model, MemoryImageSource(), worker_id="worker-a")
    beat = await heartbeat_of(js, "worker-a")
    assert beat is not None
    assert list(beat.capabilities) == ["embed", "local"]
    assert (beat.model_id, beat.dim, beat.device, beat.batch_size) == (model.model_id, 48, "cpu", 4)
    assert beat.version and beat.started_at.seconds > 0 and not beat.model_loaded
    assert (beat.runtime, beat.runtime_rate) == ("onnxruntime fp32", 0)  # untimed

    async with service.channel() as channel:
        stub = embedder_pb2_grpc.EmbedderServiceStub(channel)
        info = await stub.Info(embedder_pb2.InfoRequest())
        assert (info.worker_id, info.model_id, info.dim) == ("worker-a", model.model_id, 48)
        assert (info.runtime_setting, info.runtime, info.local_runtime) == (
            "onnxruntime",
            "onnxruntime fp32",
            "onnxruntime fp32",
        )
        assert not info.runtime_trials
        assert info.available and not info.loaded and info.quantization == "none"
        assert info.local_dim == 48
        assert list(info.index_variants) == ["global"]
        await stub.Embed(embedder_pb2.EmbedRequest(image=photo("coffee")))
        assert (await stub.Info(embedder_pb2.InfoRequest())).loaded

    async def loaded_in_heartbeat() -> bool:
        beat = await heartbeat_of(js, "worker-a")
        return beat is not None and beat.model_loaded

    await eventually(loaded_in_heartbeat, 10)
    await service.stop()
    assert await heartbeat_of(js, "worker-a") is None


async def test_auto_times_the_runtimes_once_and_a_restart_reuses_the_choice(
    nats_server, js, tiny_model: ModelFiles, tmp_path: Path
) -> None:
    model = export_for_this_test(tiny_model, tmp_path)
    # The first start quantises both graphs with NNCF and times every candidate before it
    # serves: about 30 s on a 2-core host of the slower kind.
    quick = dict(
        runtime="auto",
        runtime_probe_seconds=0.05,
        worker_id="worker-auto",
        serving_timeout=180.0,
    )
    service = await start(nats_server, model, MemoryImageSource(), **quick)
    async with service.channel() as channel:
        info = await embedder_pb2_grpc.EmbedderServiceStub(channel).Info(embedder_pb2.InfoRequest())
        vector = await embedder_pb2_grpc.EmbedderServiceStub(channel).Embed(
            embedder_pb2.EmbedRequest(image=photo("coffee"))
        )
    assert info.runtime_setting == "auto" and not info.runtime_cached
    for graph, served in (("fingerprint", info.runtime), ("local", info.local_runtime)):
        trials = [t for t in info.runtime_trials if t.graph == graph]
        assert {t.engine for t in trials} == {
            "onnxruntime fp32",
            "openvino fp32",
            "openvino bf16",
            "openvino int8",
            "torch bf16",
        }
        chosen = [t for t in trials if t.chosen]
        assert [t.engine for t in chosen] == [served]
        assert chosen[0].rate == max(t.rate for t in trials if not t.problem) > 0
        assert all(t.problem or t.min_cosine >= 0.998 for t in trials)
    beat = await heartbeat_of(js, "worker-auto")
    assert beat is not None and beat.runtime == info.runtime
    assert beat.runtime_rate == next(t.rate for t in info.runtime_trials if t.chosen)
    await service.stop()

    with capture_logs() as logs:
        again = await start(nats_server, model, MemoryImageSource(), **quick)
        async with again.channel() as channel:
            stub = embedder_pb2_grpc.EmbedderServiceStub(channel)
            restarted = await stub.Info(embedder_pb2.InfoRequest())
            same = await stub.Embed(embedder_pb2.EmbedRequest(image=photo("coffee")))
    assert restarted.runtime_cached and restarted.runtime == info.runtime
    assert list(restarted.runtime_trials) == list(info.runtime_trials)
    assert "runtime.cached" in [e["event"] for e in logs]
    assert "runtime.chosen" not in [e["event"] for e in logs]
    first, second = (np.array(v.embeddings[0].values) for v in (vector, same))
    assert float(first @ second) > 0.9999
    await again.stop()


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


async def test_embed_returns_local_descriptors_of_each_requested_turn(
    nats_server, js, tiny_model: ModelFiles, tmp_path: Path
) -> None:
    model = export_for_this_test(tiny_model, tmp_path)
    service = await start(nats_server, model, MemoryImageSource())
    async with service.channel() as channel:
        stub = embedder_pb2_grpc.EmbedderServiceStub(channel)
        reply = await stub.Embed(
            embedder_pb2.EmbedRequest(image=photo("chelsea"), local_rotations=[0, 90, 270])
        )
        plain = await stub.Embed(embedder_pb2.EmbedRequest(image=photo("chelsea")))
        for angle in (45, -90, 360):
            with pytest.raises(grpc.aio.AioRpcError) as error:
                await stub.Embed(
                    embedder_pb2.EmbedRequest(image=photo("chelsea"), local_rotations=[0, angle])
                )
            assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert f"{angle} is not a supported angle" in (error.value.details() or "")
        streamed = [
            r
            async for r in stub.EmbedStream(
                iter(
                    [
                        embedder_pb2.EmbedRequest(image=photo("coffee"), ref="a"),
                        embedder_pb2.EmbedRequest(
                            image=photo("coffee"), ref="b", local_rotations=[180]
                        ),
                        embedder_pb2.EmbedRequest(image=b"nope", ref="c", local_rotations=[0]),
                    ]
                )
            )
        ]
    grids = [from_proto(m, dim=48) for m in reply.local]
    # 451 x 300 as taken: 21 rows of 32 patches; turned 90 or 270 degrees: 32 of 21.
    assert [(g.rows, g.cols) for g in grids] == [(21, 32), (32, 21), (32, 21)]
    assert all(len(g) == SALIENT_CELLS for g in grids)
    assert not plain.local and plain.embeddings[0].values == reply.embeddings[0].values
    assert not np.array_equal(grids[1].codes, grids[2].codes)  # two different turns
    assert [(r.ref, len(r.local), bool(r.error)) for r in streamed] == [
        ("a", 0, False),
        ("b", 1, False),
        ("c", 0, True),
    ]
    assert (streamed[1].local[0].rows, streamed[1].local[0].cols) == (21, 32)
    await service.stop()


async def test_a_model_without_a_local_graph_says_so_and_still_embeds(
    nats_server, js, tiny_model: ModelFiles, tmp_path: Path
) -> None:
    """An export made before local.onnx, used in place: fingerprints as before."""
    model = export_for_this_test(tiny_model, tmp_path, local=False)
    source = MemoryImageSource({"cat": photo("chelsea")})
    service = await start(nats_server, model, source, worker_id="worker-old")
    beat = await heartbeat_of(js, "worker-old")
    assert beat is not None and list(beat.capabilities) == ["embed"]
    async with service.channel() as channel:
        stub = embedder_pb2_grpc.EmbedderServiceStub(channel)
        info = await stub.Info(embedder_pb2.InfoRequest())
        assert info.local_dim == 0 and "no local.onnx" in info.model_note
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await stub.Embed(embedder_pb2.EmbedRequest(image=photo("chelsea"), local_rotations=[0]))
        assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "has no local-descriptor graph" in (error.value.details() or "")
        reply = await stub.Embed(embedder_pb2.EmbedRequest(image=photo("coffee")))
        assert reply.dim == 48 and not reply.local
    await publish_jobs(js, model.model_id, [("cat", "i1")])

    async def embedded() -> bool:
        return len((await read_results(js, model.model_id))[0]) == 1

    await eventually(embedded)
    (done,), _ = await read_results(js, model.model_id)
    assert len(done.embeddings[0].values) == 48 and not done.HasField("local")
    await service.stop()


async def test_a_failed_local_pass_publishes_the_vectors_without_local_descriptors(
    nats_server, js, tiny_model: ModelFiles, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Injected fault: the local pass raises. A queued photo stays findable (its vectors
    are published and the job acked), only without local descriptors, and the log says
    so; a caller who asked for them gets an error, never a partial answer."""
    model = export_for_this_test(tiny_model, tmp_path)

    async def broken(self: Embedder, image: Image.Image, degrees: int) -> None:
        raise RuntimeError("local graph exploded")

    monkeypatch.setattr(Embedder, "local_grid", broken)
    source = MemoryImageSource({"cat": photo("chelsea")})
    service = await start(nats_server, model, source)
    with capture_logs() as logs:
        await publish_jobs(js, model.model_id, [("cat", "i1")])

        async def embedded() -> bool:
            return len((await read_results(js, model.model_id))[0]) == 1

        await eventually(embedded)
    (done,), failed = await read_results(js, model.model_id)
    assert not failed and not done.HasField("local") and len(done.embeddings[0].values) == 48
    warning = next(e for e in logs if e["event"] == "worker.local_failed")
    assert warning["image_id"] == "cat" and "local graph exploded" in warning["reason"]
    async with service.channel() as channel:  # asked for, they fail the photo instead
        stub = embedder_pb2_grpc.EmbedderServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await stub.Embed(embedder_pb2.EmbedRequest(image=photo("chelsea"), local_rotations=[0]))
        assert error.value.code() == grpc.StatusCode.INTERNAL
        request = embedder_pb2.EmbedRequest(image=photo("chelsea"), local_rotations=[0])
        (streamed,) = [r async for r in stub.EmbedStream(iter([request]))]
        assert "local graph exploded" in streamed.error and not streamed.embeddings
        assert (await stub.Embed(embedder_pb2.EmbedRequest(image=photo("chelsea")))).embeddings

    async def queue_empty() -> bool:
        return bool(await service.lifecycle.worker.queue_depth() == (0, 0))

    await eventually(queue_empty)
    await service.stop()
