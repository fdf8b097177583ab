import numpy as np
import pytest

from photosearch.common.errors import InvalidArgument
from photosearch.common.local import (
    from_feature_map,
    from_proto,
    keep_salient,
    local_contrast,
    to_proto,
)


def feature_map(rows: int = 6, cols: int = 5, dim: int = 8, seed: int = 0) -> np.ndarray:
    values = np.random.default_rng(seed).normal(size=(dim, rows, cols)).astype(np.float32)
    return values / np.linalg.norm(values, axis=0, keepdims=True)


def test_codes_round_trip_through_the_message():
    grid = from_feature_map(feature_map())
    back = from_proto(to_proto(grid), dim=8)
    assert (back.rows, back.cols, back.dim, len(back)) == (6, 5, 8, 30)
    np.testing.assert_array_equal(back.codes, grid.codes)
    assert np.allclose(back.unit(), feature_map().reshape(8, 30).T, atol=0.02)


def test_coordinates_are_cell_centres_in_grid_units():
    grid = from_feature_map(feature_map(rows=2, cols=3))
    assert grid.coordinates()[4].tolist() == [1.5, 1.5]  # row 1, column 1


def test_flat_cells_are_dropped_before_textured_ones():
    values = np.ones((8, 4, 4), dtype=np.float32) / np.sqrt(8)
    values[:, 1, 2] = np.eye(8)[3]  # one cell unlike its neighbours
    grid = from_feature_map(values)
    contrast = local_contrast(grid)
    assert int(np.argmax(contrast)) == 1 * 4 + 2
    kept = keep_salient(grid, budget=9)
    assert len(kept) == 9 and 6 in kept.index.tolist()
    assert np.all(np.diff(kept.index) > 0)
    # A selection travels with its cell indices and is not selected again.
    back = from_proto(to_proto(kept))
    assert back.index.tolist() == kept.index.tolist()
    assert keep_salient(back, budget=3) is back


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"rows": 0}, "grid must be"),
        ({"cols": 65}, "grid must be"),
        ({"dim": 4}, "dim must be 8"),
        ({"codes": b"\x00" * 7}, "need 240 bytes"),
        ({"cells": [3, 2]}, "ascending"),
        ({"cells": [0, 30]}, "0..29"),
    ],
)
def test_bad_descriptors_say_what_is_wrong(change, message):
    proto = to_proto(from_feature_map(feature_map()))
    if "cells" in change:
        proto.codes = proto.codes[: len(change["cells"]) * 8]
    for field, value in change.items():
        if field == "cells":
            proto.cells[:] = value
        else:
            setattr(proto, field, value)
    with pytest.raises(InvalidArgument, match=message):
        from_proto(proto, dim=8)
