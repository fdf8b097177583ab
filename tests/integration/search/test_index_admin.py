"""Index status, rebuilds, model switches and the duplicate report, against the real
catalog service (images added through its API reach search as events)."""

import io

import grpc
import numpy as np
import pytest
from PIL import Image

from photosearch.catalog.v1 import catalog_pb2
from photosearch.common import subjects
from photosearch.search.v1 import search_pb2
from tests.support.search import DIM, Harness, eventually, unit


def png(seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


async def add_catalog_images(h: Harness, items: int, per_item: int) -> list[tuple[str, str]]:
    """(image id, item id) of images added through catalog's API."""
    refs = []
    for n in range(items):
        item = await h.catalog_stub.CreateItem(
            catalog_pb2.CreateItemRequest(item=catalog_pb2.Item(name=f"Figure {n}")), timeout=10
        )
        for m in range(per_item):
            added = await h.catalog_stub.AddImage(
                catalog_pb2.AddImageRequest(
                    item_id=item.id,
                    data=png(n * 100 + m),
                    filename=f"{n}-{m}.png",
                    role=catalog_pb2.IMAGE_ROLE_OFFICIAL,
                ),
                timeout=10,
            )
            refs.append((added.image.id, item.id))
    return refs


async def jobs_in_queue(h: Harness, model_id: str) -> int:
    subject = subjects.embed_job_subject(model_id)
    info = await h.js.stream_info(subjects.EMBED_JOBS_STREAM, subjects_filter=subject)
    return int((info.state.subjects or {}).get(subject, 0))


async def status(h: Harness, model_id: str = "") -> search_pb2.IndexStatusResponse:
    return await h.stub.IndexStatus(search_pb2.IndexStatusRequest(model_id=model_id), timeout=10)


async def test_new_images_are_queued_for_the_active_model_and_live_worker_models(start_harness):
    h = await start_harness()
    await h.heartbeat("test/other-model", dim=8)
    # Search notices the worker (and its model) within its polling interval.
    await eventually(lambda: _equal(_embedded(h, "test/other-model"), 0))
    refs = await add_catalog_images(h, items=2, per_item=2)

    async def queued():
        assert await jobs_in_queue(h, h.model_id) == 4
        assert await jobs_in_queue(h, "test/other-model") == 4

    await eventually(queued)
    current = await status(h)
    assert (current.catalog_images, current.embedded, current.pending) == (4, 0, 4)
    assert current.queue_depth == 4
    assert current.active_model_id == h.model_id
    assert not current.rebuild_in_progress  # queued by events, not by a rebuild
    assert [w.worker_id for w in current.workers] == ["w1"]

    # One job is answered: the image is embedded, the others are still pending.
    await h.completed(refs[0][0], refs[0][1], unit(np.arange(1, DIM + 1)))
    await h.failed(refs[1][0], refs[1][1], "cannot decode: truncated PNG")

    async def counted():
        s = await status(h)
        assert (s.embedded, s.failed, s.pending) == (1, 1, 2)
        assert [(f.image_id, f.reason) for f in s.failures] == [
            (refs[1][0], "cannot decode: truncated PNG")
        ]

    await eventually(counted)


async def test_rebuild_is_refused_without_a_worker_for_that_model(start_harness):
    h = await start_harness()
    await add_catalog_images(h, items=1, per_item=1)
    await h.heartbeat("test/some-other-model")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await h.stub.Rebuild(search_pb2.RebuildRequest(), timeout=10)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert f"no embed-capable worker for model {h.model_id!r} is online" in (
        err.value.details() or ""
    )


async def test_rebuild_queues_each_missing_image_once(start_harness):
    h = await start_harness()
    new_model = "test/new-model"
    refs = await add_catalog_images(h, items=3, per_item=2)
    await eventually(lambda: _equal(jobs_in_queue(h, h.model_id), 6))
    # The new model has a vector for one image and a failure for another already.
    await h.completed(refs[0][0], refs[0][1], unit(np.ones(DIM)), model_id=new_model)
    await h.heartbeat(new_model)
    await eventually(lambda: _equal(_embedded(h, new_model), 1))
    await h.failed_for(new_model, refs[1][0], refs[1][1], "unsupported format")

    async def failure_seen():
        assert (await status(h, new_model)).failed == 1

    await eventually(failure_seen)

    first = await h.stub.Rebuild(search_pb2.RebuildRequest(model_id=new_model), timeout=30)
    assert (first.queued, first.already_queued, first.in_progress) == (4, 0, False)
    assert await jobs_in_queue(h, new_model) == 4
    again = await h.stub.Rebuild(search_pb2.RebuildRequest(model_id=new_model), timeout=30)
    assert (again.queued, again.already_queued) == (0, 4)
    assert await jobs_in_queue(h, new_model) == 4  # not doubled

    current = await status(h, new_model)
    assert (current.catalog_images, current.embedded, current.failed, current.pending) == (
        6,
        1,
        1,
        4,
    )
    assert current.queue_depth == 4
    assert current.rebuild_in_progress
    assert current.active_model_id == h.model_id  # still searching with the old model

    retry = await h.stub.Rebuild(
        search_pb2.RebuildRequest(model_id=new_model, retry_failed=True), timeout=30
    )
    assert (retry.queued, retry.already_queued) == (1, 4)
    assert await jobs_in_queue(h, new_model) == 5


async def _equal(awaitable, expected):
    assert await awaitable == expected


async def _embedded(h: Harness, model_id: str) -> int:
    models = await h.stub.ListModels(search_pb2.ListModelsRequest(), timeout=10)
    return next((m.embedded for m in models.models if m.model_id == model_id), -1)


async def test_switching_model_needs_full_coverage_unless_forced(start_harness):
    h = await start_harness()
    new_model = "test/new-model"
    refs = await add_catalog_images(h, items=2, per_item=1)
    for n, (image_id, item_id) in enumerate(refs):
        await h.completed(image_id, item_id, unit(np.arange(DIM) + n))
    await h.completed(refs[0][0], refs[0][1], unit(np.ones(DIM)), model_id=new_model)
    await eventually(lambda: _equal(_embedded(h, new_model), 1))
    await eventually(lambda: _equal(_embedded(h, h.model_id), 2))

    with pytest.raises(grpc.aio.AioRpcError) as err:
        await h.stub.SetActiveModel(search_pb2.SetActiveModelRequest(model_id=new_model))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "covers 1 of 2 catalog images (1 pending" in (err.value.details() or "")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await h.stub.SetActiveModel(search_pb2.SetActiveModelRequest(model_id="no/such"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND

    await h.completed(refs[1][0], refs[1][1], unit(-np.ones(DIM)), model_id=new_model)
    await eventually(lambda: _equal(_embedded(h, new_model), 2))
    switched = await h.stub.SetActiveModel(search_pb2.SetActiveModelRequest(model_id=new_model))
    assert switched.active_model_id == new_model
    reply = await h.search_items(np.ones(DIM), k=1)  # empty model id: the active model
    assert reply.model_id == new_model
    assert [c.image_id for c in reply.candidates] == [refs[0][0]]

    await add_catalog_images(h, items=1, per_item=1)  # neither model covers it yet
    await eventually(lambda: _equal(_pending(h, h.model_id), 1))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await h.stub.SetActiveModel(search_pb2.SetActiveModelRequest(model_id=h.model_id))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    forced = await h.stub.SetActiveModel(
        search_pb2.SetActiveModelRequest(model_id=h.model_id, force=True)
    )
    assert forced.active_model_id == h.model_id
    models = await h.stub.ListModels(search_pb2.ListModelsRequest())
    assert {(m.model_id, m.dim, m.embedded, m.active) for m in models.models} == {
        (new_model, DIM, 2, False),
        (h.model_id, DIM, 2, True),
    }


async def _pending(h: Harness, model_id: str) -> int:
    return (await status(h, model_id)).pending


async def test_first_worker_model_is_adopted_and_backfilled(start_harness):
    h = await start_harness(default_model_id="")
    await add_catalog_images(h, items=2, per_item=1)
    first = await status(h)
    assert (first.active_model_id, first.catalog_images, first.pending) == ("", 2, 2)

    await h.heartbeat("test/adopted", dim=8)

    async def adopted():
        s = await status(h)
        assert s.active_model_id == "test/adopted"
        assert (s.dim, s.pending, s.queue_depth) == (8, 2, 2)

    await eventually(adopted)
    assert await jobs_in_queue(h, "test/adopted") == 2


async def _lookalikes(h: Harness) -> tuple[np.ndarray, np.ndarray]:
    base = unit(np.arange(1, DIM + 1))
    twin = unit(base + 0.01 * np.ones(DIM))
    await h.completed("img-a1", "item-a", base)
    await h.completed("img-b1", "item-b", twin)  # a likely duplicate entry of item-a
    await h.completed("img-c1", "item-c", unit(np.eye(DIM)[0]))
    await h.completed("img-c2", "item-c", unit(np.eye(DIM)[0] + 0.5 * np.eye(DIM)[1]))
    await eventually(lambda: _equal(_embedded(h, h.model_id), 4))
    return base, twin


@pytest.mark.parametrize("exact", [True, False])
async def test_duplicate_report_finds_cross_item_lookalikes_and_margins(start_harness, exact):
    # Above duplicate_exact_max_images the report takes each image's HNSW neighbours.
    h = await start_harness(duplicate_exact_max_images=100 if exact else 2)
    base, twin = await _lookalikes(h)

    report = await h.stub.DuplicateReport(search_pb2.DuplicateReportRequest(threshold=0.99))
    assert report.exact == exact
    assert report.images == 4
    assert report.threshold == pytest.approx(0.99)
    assert [(p.image_id_a, p.image_id_b) for p in report.duplicates] == [("img-a1", "img-b1")]
    assert report.duplicates[0].score == pytest.approx(float(base @ twin), abs=1e-5)
    by_item = {c.item_id: c for c in report.confusables}
    assert set(by_item) == {"item-a", "item-b", "item-c"}
    assert by_item["item-a"].nearest_item_id == "item-b"
    assert by_item["item-a"].own_score == pytest.approx(1.0)
    own_c = float(unit(np.eye(DIM)[0]) @ unit(np.eye(DIM)[0] + 0.5 * np.eye(DIM)[1]))
    assert by_item["item-c"].own_score == pytest.approx(own_c, abs=1e-5)
    # Most confusable first: the smallest margin between own images and the nearest other.
    margins = [c.margin for c in report.confusables]
    assert margins == sorted(margins)
    assert report.confusables[0].item_id in {"item-a", "item-b"}

    default = await h.stub.DuplicateReport(search_pb2.DuplicateReportRequest(limit=1))
    assert default.threshold == pytest.approx(0.50)
    assert len(default.duplicates) == 1 and len(default.confusables) == 1
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await h.stub.DuplicateReport(search_pb2.DuplicateReportRequest(threshold=1.5))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_rebuild_queues_images_that_lack_local_descriptors(start_harness):
    from tests.integration.search.test_rerank import COVER

    h = await start_harness()
    new_model = "test/local-model"
    refs = await add_catalog_images(h, items=4, per_item=1)
    await eventually(lambda: _equal(jobs_in_queue(h, h.model_id), 4))
    vector = unit(np.ones(DIM))
    # Embedded before the model's embedders made descriptors: queued again.
    await h.completed(refs[0][0], refs[0][1], vector, model_id=new_model)
    await eventually(lambda: _equal(_embedded(h, new_model), 1))
    # The first descriptors, then an image whose local pass failed since: both are done
    # (queueing the latter again would only repeat the failure).
    await h.completed(refs[1][0], refs[1][1], vector, model_id=new_model, local=COVER)
    await eventually(lambda: _equal(_embedded(h, new_model), 2))
    await h.completed(refs[2][0], refs[2][1], vector, model_id=new_model)
    await h.heartbeat(new_model)
    await eventually(lambda: _equal(_embedded(h, new_model), 3))
    rebuild = await h.stub.Rebuild(search_pb2.RebuildRequest(model_id=new_model), timeout=30)
    assert (rebuild.queued, rebuild.already_queued) == (2, 0)  # refs[0] and the unembedded
    assert await jobs_in_queue(h, new_model) == 2
