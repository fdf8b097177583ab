"""How local descriptors are laid out in their table."""

import numpy as np

from photosearch.common.local import LocalGrid, keep_salient
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
