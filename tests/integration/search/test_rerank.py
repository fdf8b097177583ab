"""Local descriptors in (with the embed results), re-ranked searches out."""

import math

import grpc
import numpy as np
import psycopg
import pytest

from photosearch.common import subjects
from photosearch.common.local import LocalGrid, quantise, to_proto
from photosearch.events.v1 import events_pb2
from photosearch.search.v1 import search_pb2
from photosearch_search.rerank import RerankSettings
from tests.support.metrics import scrape
from tests.support.search import DIM, Harness, eventually, unit

LOCAL_DIM = 64
ROWS, COLS = 12, 14


def cells(n: int, seed: int) -> np.ndarray:
    out = np.random.default_rng(seed).normal(size=(n, LOCAL_DIM)).astype(np.float32)
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def grid(values: np.ndarray, rows: int, cols: int) -> events_pb2.LocalDescriptors:
    return to_proto(LocalGrid(rows, cols, np.arange(rows * cols, dtype=np.int32), quantise(values)))


SOURCE = cells(ROWS * COLS, seed=1)
COVER = grid(SOURCE, ROWS, COLS)  # the catalog photo of the item the query shows
OTHER = grid(cells(ROWS * COLS, seed=2), ROWS, COLS)


def turned_90() -> events_pb2.LocalDescriptors:
    """The query photo: the cover turned 90 degrees (a COLS x ROWS grid)."""
    out = cells(COLS * ROWS, seed=3)
    source = SOURCE.reshape(ROWS, COLS, LOCAL_DIM)
    for y in range(ROWS):
        for x in range(COLS):
            out[x * ROWS + (ROWS - 1 - y)] = source[y, x]
    return grid(out, COLS, ROWS)


def query_views() -> list[events_pb2.LocalDescriptors]:
    """As taken (nothing in common with the cover), then turned."""
    return [grid(cells(COLS * ROWS, seed=4), COLS, ROWS), turned_90()]


def vector(similarity: float) -> np.ndarray:
    """A unit vector with this cosine to the query (basis vector 0)."""
    v = np.zeros(DIM, dtype=np.float32)
    v[0], v[1] = similarity, np.sqrt(1 - similarity**2)
    return v


QUERY = unit(np.eye(DIM, dtype=np.float32)[0])


async def stored(h: Harness) -> list[tuple[str, str, int, int, int, bool, int]]:
    url = h.search.lifecycle.infra.database_url
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cur = await conn.execute(
            "SELECT image_id, item_id, grid_rows, grid_cols, dim, cells IS NULL,"
            " length(codes) FROM local_descriptors ORDER BY image_id"
        )
        return [tuple(r) for r in await cur.fetchall()]  # type: ignore[misc]


async def test_a_verified_candidate_outranks_a_closer_fingerprint(start_harness):
    h = await start_harness(metrics_sample_seconds=0.1)
    await h.completed("img-near", "item-near", vector(0.9), local=OTHER)
    await h.completed("img-cover-2", "item-cover", vector(0.5), local=OTHER)
    await h.completed("img-cover", "item-cover", vector(0.8), local=COVER)
    await h.completed("img-plain", "item-plain", vector(0.6))  # an embedder without local

    async def all_in():
        reply = await h.search_items(QUERY, k=10)
        assert [c.item_id for c in reply.candidates] == ["item-near", "item-cover", "item-plain"]
        return reply

    plain = await eventually(all_in)
    assert not plain.reranked
    assert [t.stage for t in plain.timings] == ["candidates", "names"]
    assert [c.global_score for c in plain.candidates] == [c.score for c in plain.candidates]
    assert [c.inliers for c in plain.candidates] == [0, 0, 0]
    assert await stored(h) == [
        ("img-cover", "item-cover", ROWS, COLS, LOCAL_DIM, True, ROWS * COLS * LOCAL_DIM),
        ("img-cover-2", "item-cover", ROWS, COLS, LOCAL_DIM, True, ROWS * COLS * LOCAL_DIM),
        ("img-near", "item-near", ROWS, COLS, LOCAL_DIM, True, ROWS * COLS * LOCAL_DIM),
    ]

    reply = await h.search_items(QUERY, k=10, local=query_views())
    assert reply.reranked
    stages = [t.stage for t in reply.timings]
    assert stages == ["candidates", "region_index", "descriptors", "rerank", "names"]
    parts = sum(t.milliseconds for t in reply.timings if t.stage in ("region_index", "descriptors"))
    assert parts <= reply.timings[0].milliseconds  # parts of the candidate lookup
    assert all(0 < t.milliseconds < 10_000 for t in reply.timings)
    assert [c.item_id for c in reply.candidates] == ["item-cover", "item-near", "item-plain"]
    cover, near, no_local = reply.candidates
    assert cover.image_id == "img-cover"  # the photo that verified
    assert cover.inliers >= 30
    assert cover.global_score == pytest.approx(0.8, abs=1e-5)
    # Its inliers over the best other candidate's (chance inliers, under the floor: 0).
    rule = RerankSettings()
    assert near.inliers < rule.min_inliers and near.score == near.global_score
    verification = math.log1p(cover.inliers) - rule.margin
    assert cover.verification == pytest.approx(verification, abs=1e-5)
    assert cover.score == pytest.approx(0.8 + rule.weight * verification, abs=1e-5)
    assert cover.verified and not near.verified and not no_local.verified
    assert reply.band == search_pb2.MATCH_BAND_MATCH
    assert no_local.score == no_local.global_score == pytest.approx(0.6, abs=1e-5)

    # min_score applies to the final score.
    verified = await h.search_items(QUERY, k=10, local=query_views(), min_score=0.93)
    assert [c.item_id for c in verified.candidates] == ["item-cover"]
    top = await h.search_items(QUERY, k=1, local=query_views())
    assert [c.item_id for c in top.candidates] == ["item-cover"]
    assert not reply.turned_views_wanted  # the turned view came with the query
    # Only the photo as taken, which verifies nothing: the client is asked for the turns.
    upright = await h.search_items(QUERY, k=10, local=query_views()[:1])
    assert upright.reranked and upright.turned_views_wanted
    assert [c.item_id for c in upright.candidates] == ["item-near", "item-cover", "item-plain"]
    # A photo as taken that verifies the cover needs no turned views.
    direct = await h.search_items(QUERY, k=10, local=[COVER])
    assert direct.candidates[0].item_id == "item-cover"
    assert direct.reranked and not direct.turned_views_wanted
    # The same request without descriptors is answered as before.
    again = await h.search_items(QUERY, k=10)
    assert [c.item_id for c in again.candidates] == ["item-near", "item-cover", "item-plain"]
    assert not again.reranked

    # What /metrics says of these searches and of the index.
    async def sampled():
        figures = await scrape(h.search.metrics_url)
        assert figures.value("search_model_images", model_id=h.model_id) == 4
        return figures

    figures = await eventually(sampled)
    assert figures.value("search_query_seconds_count", kind="reranked") == 5
    assert figures.value("search_query_seconds_count", kind="plain") >= 2
    assert figures.value("search_answers_total", kind="reranked", band="match") >= 3
    assert figures.value("search_rerank_candidates_compared_count") == 5
    assert figures.value("search_candidates_verified_total") >= 3
    model = {"model_id": h.model_id}
    assert figures.value("search_active_model", **model) == 1
    assert figures.value("search_embed_workers", **model) == 0
    assert figures.value("search_embed_pending", **model) == 0
    assert figures.value("search_embed_failed", **model) == 0
    search_rpc = {"grpc_method": "Search", "grpc_code": "OK"}
    assert figures.value("grpc_server_handled_total", **search_rpc) >= 7


async def test_descriptors_go_with_their_image_and_stay_out_once_deleted(start_harness):
    h = await start_harness()
    await h.completed("img-1", "item-1", vector(0.9), local=COVER)
    await h.completed("img-2", "item-2", vector(0.8), local=OTHER)
    await h.completed("img-3", "item-2", vector(0.7), local=OTHER)

    async def three():
        assert [r[0] for r in await stored(h)] == ["img-1", "img-2", "img-3"]

    await eventually(three)
    # A full grid larger than the cell budget is kept as its 250 most salient cells.
    await h.completed("img-4", "item-4", vector(0.6), local=grid(cells(20 * 21, 9), 20, 21))

    async def four():
        assert (await stored(h))[-1] == ("img-4", "item-4", 20, 21, LOCAL_DIM, False, 250 * 64)

    await eventually(four)
    # Unusable descriptors are dropped, the vector is kept: a selection larger than the
    # budget, codes that do not fit the grid.
    oversized = events_pb2.LocalDescriptors(
        rows=20, cols=21, dim=LOCAL_DIM, codes=bytes(300 * LOCAL_DIM), cells=list(range(300))
    )
    await h.completed("img-5", "item-5", vector(0.5), local=oversized)
    broken = events_pb2.LocalDescriptors(rows=2, cols=2, dim=LOCAL_DIM, codes=b"\x01")
    await h.completed("img-6", "item-6", vector(0.4), local=broken)
    await eventually(lambda: _has_item(h, "item-5"))
    await eventually(lambda: _has_item(h, "item-6"))
    before = await stored(h)
    assert [r[0] for r in before] == ["img-1", "img-2", "img-3", "img-4"]
    # A redelivered result changes nothing; one without descriptors keeps them.
    await h.completed("img-1", "item-1", vector(0.9), local=COVER)
    await h.completed("img-2", "item-2", vector(0.8))
    await h.completed("img-9", "item-9", vector(0.1))  # a marker: once searchable, all seen
    await eventually(lambda: _has_item(h, "item-9"))
    assert await stored(h) == before

    await h.catalog_event(
        subjects.IMAGE_DELETED, events_pb2.ImageDeleted(image_id="img-1", item_id="item-1")
    )
    await h.catalog_event(
        subjects.ITEM_DELETED, events_pb2.ItemDeleted(item_id="item-2", image_ids=["img-2"])
    )

    async def gone():
        assert [r[0] for r in await stored(h)] == ["img-4"]

    await eventually(gone)
    # Results computed before the deletions arrive late: nothing comes back.
    await h.completed("img-1", "item-1", vector(0.9), local=COVER)
    await h.completed("img-3", "item-2", vector(0.7), local=OTHER)
    await h.completed("img-8", "item-8", vector(0.2), local=OTHER)  # marker
    await eventually(lambda: _has_item(h, "item-8"))
    assert [r[0] for r in await stored(h)] == ["img-4", "img-8"]


async def _has_item(h: Harness, item_id: str) -> None:
    reply = await h.search_items(QUERY, k=20)
    assert item_id in [c.item_id for c in reply.candidates]


async def _invalid(h: Harness, **kwargs) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await h.search_items(QUERY, k=5, **kwargs)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    return caught.value.details() or ""


async def test_bad_local_descriptors_get_clear_errors(start_harness):
    h = await start_harness()
    await h.completed("img-1", "item-1", vector(0.9), local=COVER)
    await eventually(lambda: _has_item(h, "item-1"))

    short = events_pb2.LocalDescriptors(rows=ROWS, cols=COLS, dim=LOCAL_DIM, codes=b"\x01" * 10)
    assert "bytes of codes" in await _invalid(h, local=[turned_90(), short])
    assert "local[1]" in await _invalid(h, local=[turned_90(), short])
    assert "at most 4 views" in await _invalid(h, local=[turned_90()] * 5)
    narrow = grid(cells(ROWS * COLS, 5)[:, :32] * 2, ROWS, COLS)
    assert "dim must be 64" in await _invalid(h, local=[narrow])
    selection = events_pb2.LocalDescriptors(
        rows=ROWS, cols=COLS, dim=LOCAL_DIM, codes=b"\x01" * LOCAL_DIM * 2, cells=[5, 3]
    )
    assert "ascending" in await _invalid(h, local=[selection])
    upper = RerankSettings().max_score  # a cosine of 1 plus the largest verification
    too_high = await _invalid(h, local=[turned_90()], min_score=upper + 0.5)
    assert f"re-ranked score in [-1, {upper:g}]" in too_high
    # Without local, min_score stays a cosine similarity.
    assert "cosine similarity" in await _invalid(h, min_score=1.5)


async def test_a_model_without_descriptors_answers_the_global_ranking(start_harness):
    h = await start_harness()
    await h.completed("img-1", "item-1", vector(0.9))
    await h.completed("img-2", "item-2", vector(0.8))

    async def both():
        reply = await h.search_items(QUERY, k=5, local=query_views())
        assert [c.item_id for c in reply.candidates] == ["item-1", "item-2"]
        return reply

    reply = await eventually(both)
    assert not reply.reranked
    assert [c.global_score for c in reply.candidates] == [c.score for c in reply.candidates]
    # The views are still checked.
    short = events_pb2.LocalDescriptors(rows=ROWS, cols=COLS, dim=LOCAL_DIM, codes=b"\x01")
    assert "bytes of codes" in await _invalid(h, local=[short])


async def test_no_turned_views_are_asked_for_when_no_candidate_has_descriptors(start_harness):
    h = await start_harness(rerank_top_k=1)
    await h.completed("img-cover", "item-cover", vector(0.8), local=COVER)
    await h.completed("img-plain", "item-plain", vector(0.6))  # an embedder without local

    async def both_in():
        reply = await h.search_items(QUERY, k=10)
        assert len(reply.candidates) == 2
        return reply

    await eventually(both_in)
    # The only candidate re-ranked (the plain one, closest to this query) has nothing to
    # match: turned views could not help, so none are asked for.
    plain_query = unit(vector(0.6))
    reply = await h.search_items(plain_query, k=10, local=query_views()[:1])
    assert reply.reranked and not reply.turned_views_wanted
    assert reply.candidates[0].item_id == "item-plain" and reply.candidates[0].inliers == 0
