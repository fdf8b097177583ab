import numpy as np
import pytest

from tools.quality.cost import descriptor_bytes
from tools.quality.extract import LocalFeatures, grid_xy
from tools.quality.salient import keep_salient, local_contrast


def flat_photo(rows: int, cols: int, dim: int = 8) -> LocalFeatures:
    """Every cell the same descriptor: no contrast anywhere."""
    cells = np.zeros((rows * cols, dim), dtype=np.float32)
    cells[:, 0] = 1.0
    return LocalFeatures(cells, grid_xy(rows, cols), (rows, cols), cols / rows)


def with_cells(features: LocalFeatures, marks: dict[int, int]) -> LocalFeatures:
    """Cells at the given indices turned to another axis (a textured spot)."""
    cells = features.cells.copy()
    for index, axis in marks.items():
        cells[index] = 0.0
        cells[index, axis] = 1.0
    return LocalFeatures(cells, features.xy, features.grid, features.aspect)


def test_flat_photo_has_no_contrast_and_a_distinct_cell_has_full_contrast():
    flat = flat_photo(4, 5)
    assert np.allclose(local_contrast(flat), 0.0)
    spot = with_cells(flat, {7: 1})  # row 1, col 2: orthogonal to all 8 neighbours
    contrast = local_contrast(spot).reshape(4, 5)
    assert contrast[1, 2] == pytest.approx(1.0)
    assert contrast[0, 2] == pytest.approx(1 / 5)  # top edge: 5 neighbours, one differs
    assert contrast[3, 4] == pytest.approx(0.0)  # far corner sees only flat cells


def test_keep_salient_keeps_the_distinct_cells_with_their_positions():
    spot = with_cells(flat_photo(6, 6), {14: 1, 27: 2, 3: 3})
    kept = keep_salient(spot, 3)
    assert kept.grid == (6, 6)
    assert np.array_equal(kept.cells, spot.cells[[3, 14, 27]])  # grid order
    assert np.array_equal(kept.xy, spot.xy[[3, 14, 27]])
    assert len(keep_salient(spot, 1).cells) == 1


def test_small_photos_are_untouched_and_bad_inputs_are_refused():
    photo = flat_photo(3, 3)
    assert keep_salient(photo, 9) is photo
    with pytest.raises(ValueError, match="positive"):
        keep_salient(photo, 0)
    partial = keep_salient(with_cells(flat_photo(4, 4), {5: 1}), 4)
    with pytest.raises(ValueError, match="full 4x4 grid"):
        local_contrast(partial)


def test_payload_of_kept_cells_counts_their_positions():
    photo = with_cells(flat_photo(6, 6), {14: 1})
    assert descriptor_bytes(photo, int8=True) == 36 * 8 + 4
    assert descriptor_bytes(keep_salient(photo, 10), int8=True) == 10 * 8 + 4 + 10 * 2
