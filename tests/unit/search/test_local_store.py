"""How local descriptors are laid out in their table."""

import numpy as np
import pytest
from pydantic import ValidationError

from photosearch.common.local import LocalGrid, keep_salient, to_proto
from photosearch.events.v1 import events_pb2
from photosearch_search.config import MAX_RERANK_PHOTOS, SearchSettings
from photosearch_search.indexer import check_local
from photosearch_search.local_store import decode, encode_cells


def grid(rows: int, cols: int, seed: int = 0) -> LocalGrid:
    codes = np.random.default_rng(seed).integers(-127, 128, size=(rows * cols, 64), dtype=np.int8)
    return LocalGrid(rows, cols, np.arange(rows * cols, dtype=np.int32), codes)


def test_a_full_grid_stores_no_cell_list():
    full = grid(12, 14)
    assert encode_cells(full) is None
    back = decode(12, 14, 64, None, full.codes.tobytes())
    assert np.array_equal(back.index, full.index) and np.array_equal(back.codes, full.codes)


def test_a_selection_keeps_its_cells_and_positions():
    kept = keep_salient(grid(28, 21, seed=1))
    assert len(kept) == 250
    cells = encode_cells(kept)
    assert cells is not None and len(cells) == 2 * 250
    back = decode(28, 21, 64, cells, kept.codes.tobytes())
    assert np.array_equal(back.index, kept.index)
    assert np.array_equal(back.codes, kept.codes)
    assert np.array_equal(back.coordinates(), kept.coordinates())


def event(local: events_pb2.LocalDescriptors | None) -> events_pb2.EmbedCompleted:
    return events_pb2.EmbedCompleted(image_id="img", item_id="item", model_id="m", local=local)


def test_an_embed_result_keeps_usable_descriptors_only():
    assert check_local(event(None)) is None
    whole = check_local(event(to_proto(grid(20, 21))))
    assert whole is not None and len(whole) == 250  # reduced to the salient cells
    small = check_local(event(to_proto(grid(12, 14))))
    assert small is not None and len(small) == 12 * 14
    oversized = events_pb2.LocalDescriptors(
        rows=20, cols=21, dim=64, codes=bytes(300 * 64), cells=list(range(300))
    )
    assert check_local(event(oversized)) is None
    wide = events_pb2.LocalDescriptors(rows=1, cols=2, dim=5000, codes=bytes(2 * 5000))
    assert check_local(event(wide)) is None
    broken = events_pb2.LocalDescriptors(rows=2, cols=2, dim=64, codes=b"\x01")
    assert check_local(event(broken)) is None


def test_rerank_settings_keep_the_matcher_within_a_few_hundred_photos():
    SearchSettings(
        database_url="",
        rerank_top_k=MAX_RERANK_PHOTOS // 10,
        rerank_photos_per_item=10,
        region_candidates=0,
    )
    with pytest.raises(ValidationError, match="at most 240 photos are matched per search"):
        SearchSettings(database_url="", rerank_top_k=100, rerank_photos_per_item=3)
    # The region index's candidates are matched too, and count.
    SearchSettings(database_url="", rerank_top_k=60, region_candidates=20, rerank_photos_per_item=3)
    with pytest.raises(ValidationError, match="SEARCH_REGION_CANDIDATES"):
        SearchSettings(
            database_url="", rerank_top_k=60, region_candidates=21, rerank_photos_per_item=3
        )
