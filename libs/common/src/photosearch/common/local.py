"""Local descriptors: one unit vector per cell of a model's feature grid, sent and stored
as int8 codes (`photosearch.events.v1.LocalDescriptors`).

The embedder makes them (catalog side), the browser makes them (query side), search
matches them to re-rank candidates. This module is what all three agree on: the codes,
their validation, and which cells are kept. Model-agnostic: it never looks at pixels."""

from dataclasses import dataclass

import numpy as np

from photosearch.common.errors import InvalidArgument
from photosearch.events.v1 import events_pb2

INT8_SCALE = 127.0
# Cells kept per photo (query and catalog): the most distinctive ones. Measured on
# smvs_dvd_covers: 250 keep recall@1 within 1.5 points of all ~600-800 cells at half
# the matching cost and less than half the bytes (docs/quality.md).
SALIENT_CELLS = 250
# Largest grid accepted from a client: a 448-px long side gives at most 28 x 28 cells at
# stride 16 and 32 x 32 patches at 14; 64 x 64 leaves room for other models.
MAX_GRID_SIDE = 64
NEIGHBOURS = tuple((dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0))


@dataclass(frozen=True)
class LocalGrid:
    """Cells of one photo (or one turned view of it)."""

    rows: int
    cols: int
    index: np.ndarray  # (n,) int32, row-major grid index of each cell, ascending
    codes: np.ndarray  # (n, dim) int8

    @property
    def dim(self) -> int:
        return int(self.codes.shape[1])

    def __len__(self) -> int:
        return int(self.codes.shape[0])

    def unit(self) -> np.ndarray:
        """(n, dim) float32 unit rows (codes scaled back and renormalised)."""
        return dequantise(self.codes)

    def coordinates(self) -> np.ndarray:
        """(n, 2) float32 cell centres (x, y) in cells of this grid."""
        ys, xs = np.divmod(self.index, self.cols)
        out: np.ndarray = np.stack([xs, ys], axis=1).astype(np.float32) + 0.5
        return out


def quantise(unit: np.ndarray) -> np.ndarray:
    """Unit rows -> int8 codes."""
    return np.clip(np.rint(unit * INT8_SCALE), -127, 127).astype(np.int8)


def dequantise(codes: np.ndarray) -> np.ndarray:
    values = codes.astype(np.float32) / INT8_SCALE
    norms = np.linalg.norm(values, axis=1, keepdims=True)
    out: np.ndarray = values / np.maximum(norms, 1e-12)
    return out


def from_feature_map(feature_map: np.ndarray) -> LocalGrid:
    """(dim, rows, cols) float map of unit cell vectors -> every cell, quantised."""
    dim, rows, cols = feature_map.shape
    unit = np.ascontiguousarray(feature_map.reshape(dim, rows * cols).T, dtype=np.float32)
    return LocalGrid(rows, cols, np.arange(rows * cols, dtype=np.int32), quantise(unit))


def local_contrast(grid: LocalGrid) -> np.ndarray:
    """(n,) float32: 1 - mean cosine of each cell with its grid neighbours (0 when
    alone). Flat background and blank card score low; print, edges and corners high."""
    if len(grid) != grid.rows * grid.cols:
        raise ValueError("local contrast needs the full grid")
    return grid_contrast(grid.unit().reshape(grid.rows, grid.cols, grid.dim))


def grid_contrast(unit: np.ndarray) -> np.ndarray:
    """`local_contrast` of a (rows, cols, dim) map of unit vectors, row-major."""
    rows, cols = unit.shape[:2]
    total = np.zeros((rows, cols), dtype=np.float32)
    count = np.zeros((rows, cols), dtype=np.float32)
    for dy, dx in NEIGHBOURS:
        ys = slice(max(0, -dy), rows - max(0, dy))
        xs = slice(max(0, -dx), cols - max(0, dx))
        ny = slice(max(0, dy), rows - max(0, -dy))
        nx = slice(max(0, dx), cols - max(0, -dx))
        total[ys, xs] += np.einsum("ijk,ijk->ij", unit[ys, xs], unit[ny, nx])
        count[ys, xs] += 1
    mean = np.divide(total, count, out=np.ones_like(total), where=count > 0)
    out: np.ndarray = (1.0 - mean).ravel()
    return out


def keep_salient(grid: LocalGrid, budget: int = SALIENT_CELLS) -> LocalGrid:
    """The `budget` cells of highest local contrast (ties: lower index first), in grid
    order. A grid that is already a selection, or has at most `budget` cells, is
    returned as it is, so applying this twice changes nothing."""
    if budget <= 0:
        raise ValueError(f"a cell budget must be positive, got {budget}")
    if len(grid) <= budget or len(grid) != grid.rows * grid.cols:
        return grid
    chosen = np.sort(np.argsort(-local_contrast(grid), kind="stable")[:budget])
    return LocalGrid(grid.rows, grid.cols, grid.index[chosen], grid.codes[chosen])


def to_proto(grid: LocalGrid) -> events_pb2.LocalDescriptors:
    full = len(grid) == grid.rows * grid.cols
    return events_pb2.LocalDescriptors(
        rows=grid.rows,
        cols=grid.cols,
        dim=grid.dim,
        codes=grid.codes.tobytes(),
        cells=[] if full else grid.index.tolist(),
    )


def from_proto(
    message: events_pb2.LocalDescriptors, dim: int | None = None, what: str = "local"
) -> LocalGrid:
    """Validated grid; InvalidArgument says what is wrong. `dim`: the model's local
    dimension, when known."""
    rows, cols, width = message.rows, message.cols, message.dim
    if not (0 < rows <= MAX_GRID_SIDE and 0 < cols <= MAX_GRID_SIDE):
        raise InvalidArgument(
            f"{what}: grid must be 1..{MAX_GRID_SIDE} cells a side, got {rows}x{cols}"
        )
    if width <= 0 or (dim is not None and width != dim):
        expected = f"{dim}" if dim is not None else "positive"
        raise InvalidArgument(f"{what}: dim must be {expected}, got {width}")
    n = len(message.cells) if message.cells else rows * cols
    if len(message.codes) != n * width:
        raise InvalidArgument(
            f"{what}: {n} cells of {width} values need {n * width} bytes of codes, "
            f"got {len(message.codes)}"
        )
    if message.cells:
        index = np.asarray(message.cells, dtype=np.int64)
        if index.min() < 0 or index.max() >= rows * cols or np.any(np.diff(index) <= 0):
            raise InvalidArgument(
                f"{what}: cells must be distinct grid indices 0..{rows * cols - 1}, ascending"
            )
        index = index.astype(np.int32)
    else:
        index = np.arange(rows * cols, dtype=np.int32)
    codes = np.frombuffer(message.codes, dtype=np.int8).reshape(n, width)
    return LocalGrid(rows, cols, index, codes)
