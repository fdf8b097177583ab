"""Vectors and catalog events in, ranked items out."""

import grpc
import numpy as np
import pytest

from photosearch.common import subjects
from photosearch.events.v1 import events_pb2
from photosearch.search.v1 import search_pb2
from tests.support.search import DIM, eventually, unit


def basis(i: int, noise: float = 0.0, seed: int = 0) -> np.ndarray:
    v = np.zeros(DIM, dtype=np.float32)
    v[i] = 1.0
    if noise:
        v += np.random.default_rng(seed).normal(0, noise, DIM).astype(np.float32)
    return unit(v)


async def test_vectors_in_become_searchable_items_grouped_by_best_image(start_harness):
    h = await start_harness()
    query = basis(0)
    near, far = unit(query + 0.2 * basis(1)), unit(query + 0.9 * basis(2))
    other = unit(query + 0.5 * basis(3))
    await h.completed("img-a1", "item-a", far)
    await h.completed("img-a2", "item-a", near)
    await h.completed("img-b1", "item-b", other)
    await h.completed("img-c1", "item-c", basis(5))

    async def three_items():
        reply = await h.search_items(query, k=10)
        assert len(reply.candidates) == 3
        return reply

    reply = await eventually(three_items)
    assert reply.model_id == h.model_id
    assert [c.item_id for c in reply.candidates] == ["item-a", "item-b", "item-c"]
    # item-a appears once, scored by its best image.
    assert reply.candidates[0].image_id == "img-a2"
    assert reply.candidates[0].score == pytest.approx(float(near @ query), abs=1e-5)
    assert reply.candidates[1].score == pytest.approx(float(other @ query), abs=1e-5)

    limited = await h.search_items(query, k=1)
    assert [c.item_id for c in limited.candidates] == ["item-a"]
    above = await h.search_items(query, k=10, min_score=0.5)
    assert [c.item_id for c in above.candidates] == ["item-a", "item-b"]
    # The query need not be unit length: it is normalised.
    scaled = await h.search_items(query * 7.0, k=10)
    assert [c.score for c in scaled.candidates] == pytest.approx(
        [c.score for c in reply.candidates], abs=1e-5
    )


async def test_same_image_again_replaces_its_vectors(start_harness):
    h = await start_harness()
    await h.completed("img-1", "item-1", basis(0), variants={"mirror": basis(1)})
    await eventually(lambda: _top(h, basis(1), "item-1", "img-1"))
    await h.completed("img-1", "item-1", basis(2))  # no mirror this time

    async def replaced():
        reply = await h.search_items(basis(2), k=5)
        assert [(c.item_id, round(c.score, 4)) for c in reply.candidates] == [("item-1", 1.0)]
        status = await h.stub.IndexStatus(search_pb2.IndexStatusRequest())
        assert status.embedded == 1

    await eventually(replaced)
    reply = await h.search_items(basis(1), k=5)
    assert reply.candidates[0].score == pytest.approx(0.0, abs=1e-5)  # the mirror is gone


async def _top(h, vector, item_id, image_id):
    reply = await h.search_items(vector, k=1)
    assert [(c.item_id, c.image_id) for c in reply.candidates] == [(item_id, image_id)]
    return reply


async def test_deleted_image_and_item_are_gone_and_late_vectors_stay_out(start_harness):
    h = await start_harness()
    await h.completed("img-1", "item-1", basis(0))
    await h.completed("img-2", "item-2", basis(1))
    await h.completed("img-3", "item-2", basis(2))
    await eventually(lambda: _top(h, basis(2), "item-2", "img-3"))

    await h.catalog_event(
        subjects.IMAGE_DELETED, events_pb2.ImageDeleted(image_id="img-1", item_id="item-1")
    )
    await h.catalog_event(
        subjects.ITEM_DELETED, events_pb2.ItemDeleted(item_id="item-2", image_ids=["img-2"])
    )

    async def gone():
        reply = await h.search_items(basis(0), k=10)
        assert list(reply.candidates) == []

    await eventually(gone)
    # A vector computed before the deletion arrives afterwards: it must not come back.
    await h.completed("img-1", "item-1", basis(0))
    await h.completed("img-3", "item-2", basis(2))  # not named in ItemDeleted, same item
    await h.completed("img-9", "item-9", basis(4))  # a marker: once searchable, all were seen
    await eventually(lambda: _top(h, basis(4), "item-9", "img-9"))
    reply = await h.search_items(basis(0), k=10)
    assert [c.item_id for c in reply.candidates] == ["item-9"]


async def test_filters_on_series_maker_and_tags_lose_nothing(start_harness):
    # exact_search_max_rows=3: broad filters walk the index, narrow ones compare all.
    h = await start_harness(exact_search_max_rows=3)
    rng = np.random.default_rng(7)
    vectors = {}
    count = 200
    for n in range(count):
        item = f"item-{n:03d}"
        series = "alpha" if n % 2 else "beta"
        maker = "acme" if n < 5 else "other"
        tags = ["red"] if n % 3 == 0 else ["blue"]
        if n == count - 1:
            tags.append("rare")
        upsert = events_pb2.ItemUpserted(item_id=item, series=series, maker=maker, tags=tags)
        if n % 2:  # attributes before the vectors for half of the items, after for the rest
            upsert.series = series.upper()  # compared case-insensitively
            await h.catalog_event(subjects.ITEM_UPSERTED, upsert)
        vectors[item] = unit(rng.normal(size=DIM))
        await h.completed(f"img-{n:03d}", item, vectors[item])
        if n % 2 == 0:
            await h.catalog_event(subjects.ITEM_UPSERTED, upsert)
    query = unit(rng.normal(size=DIM))

    def expected(keep, k):
        ranked = sorted((-(vectors[i] @ query), i) for i in vectors if keep(int(i[5:])))
        return [i for _, i in ranked][:k]

    async def all_attributes_seen():
        reply = await h.search_items(query, k=5, filters=search_pb2.Filters(tags=["rare"]))
        assert [c.item_id for c in reply.candidates] == [f"item-{count - 1:03d}"]
        reply = await h.search_items(query, k=5, filters=search_pb2.Filters(series=["beta"]))
        assert [c.item_id for c in reply.candidates] == expected(lambda n: n % 2 == 0, 5)

    await eventually(all_attributes_seen)

    cases = [
        # (filters, which items match, k, answered exactly)
        (search_pb2.Filters(series=["Alpha"]), lambda n: n % 2 == 1, 5, False),
        (search_pb2.Filters(series=["alpha"]), lambda n: n % 2 == 1, 100, True),
        # 5 match: more than the exact cap, fewer than the index scan wants: falls back.
        (search_pb2.Filters(makers=["acme"]), lambda n: n < 5, 5, True),
        (
            search_pb2.Filters(makers=["acme"], tags=["red"]),
            lambda n: n < 5 and n % 3 == 0,
            5,
            True,
        ),
        (
            search_pb2.Filters(series=["beta"], tags=["blue"]),
            lambda n: n % 2 == 0 and n % 3,
            5,
            False,
        ),
        (search_pb2.Filters(tags=["red", "rare"]), lambda n: False, 5, True),
        (search_pb2.Filters(series=["alpha", "beta"], makers=["nobody"]), lambda n: False, 5, True),
    ]
    for filters, keep, k, exact in cases:
        reply = await h.search_items(query, k=k, filters=filters)
        assert [c.item_id for c in reply.candidates] == expected(keep, k), filters
        assert reply.exact == exact, filters
    unfiltered = await h.search_items(query, k=5)
    assert [c.item_id for c in unfiltered.candidates] == expected(lambda n: True, 5)
    assert not unfiltered.exact


async def test_bad_queries_get_clear_errors(start_harness):
    h = await start_harness()
    await h.completed("img-1", "item-1", basis(0))
    await eventually(lambda: _top(h, basis(0), "item-1", "img-1"))
    cases = [
        ([1.0] * (DIM - 1), {}, "has 15 values but model"),
        ([float("nan")] + [1.0] * (DIM - 1), {}, "NaN"),
        ([float("inf")] + [1.0] * (DIM - 1), {}, "NaN or infinite"),
        ([0.0] * DIM, {}, "all zeros"),
        ([1.0] * DIM, {"k": 10_000}, "k must be between 1 and"),
        ([1.0] * DIM, {"min_score": 2.0}, "min_score"),
    ]
    for vector, extra, message in cases:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await h.search_items(vector, **extra)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, message
        assert message in (err.value.details() or ""), err.value.details()
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await h.search_items([1.0] * DIM, model_id="no/such-model")
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert h.model_id in (err.value.details() or "")  # names the models that exist


async def test_no_active_model_is_a_failed_precondition(start_harness):
    h = await start_harness(default_model_id="")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await h.search_items([1.0] * DIM)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "no model is active" in (err.value.details() or "")


async def test_reindex_with_new_parameters_keeps_search_answering(start_harness):
    from photosearch_search.models import IndexParams
    from photosearch_search.reindex import build_ann_index

    h = await start_harness()
    vectors = [basis(i % DIM, noise=0.3, seed=i) for i in range(60)]
    for i, vector in enumerate(vectors):
        await h.completed(f"img-{i}", f"item-{i}", vector)
    await eventually(lambda: _top(h, vectors[59], "item-59", "img-59"))
    url = h.search.lifecycle.infra.database_url
    seconds = await build_ann_index(url, h.model_id, IndexParams(8, 32, "256MB", 0))
    assert seconds >= 0
    async with h.search.lifecycle.infra.require_pool().connection() as conn:
        cur = await conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE indexdef LIKE '%hnsw%'"
        )
        indexes = await cur.fetchall()
    assert len(indexes) == 1 and indexes[0][0].endswith("_ann")
    assert "m='8'" in indexes[0][1] and "ef_construction='32'" in indexes[0][1]
    for i in (0, 17, 59):
        await _top(h, vectors[i], f"item-{i}", f"img-{i}")


async def test_an_older_item_event_redelivered_late_does_not_undo_a_newer_one(start_harness):
    from photosearch_search import repository
    from photosearch_search.domain import ItemSummary

    h = await start_harness()
    # Stream sequence 1 then 2 (this test's NATS has seen no other catalog event).
    for series in ("Old Series", "New Series"):
        upsert = events_pb2.ItemUpserted(item_id="item-1", series=series)
        await h.catalog_event(subjects.ITEM_UPSERTED, upsert)
    await h.completed("img-1", "item-1", basis(0))
    new_series = search_pb2.Filters(series=["new series"])
    await eventually(lambda: _top_filtered(h, new_series, "item-1"))

    async with h.search.lifecycle.infra.require_pool().connection() as conn:
        applied = await repository.upsert_item(
            conn, [], "item-1", ("old series", None, []), 1, ItemSummary("Old name")
        )
    assert not applied  # the first event, redelivered after the second was applied
    await _top_filtered(h, new_series, "item-1")


async def _top_filtered(h, filters, item_id):
    reply = await h.search_items(basis(0), k=5, filters=filters)
    assert [c.item_id for c in reply.candidates] == [item_id]
