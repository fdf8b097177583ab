"""Fewer local descriptors per photo: keep only the cells that stand out from their
neighbours on the feature grid. Model-agnostic (it reads only the unit cell descriptors
that are sent and stored, after PCA and int8), and the same rule on query and catalog
side, so the browser can drop cells before sending them.

A cell's local contrast is 1 - the mean cosine with its (up to 8) grid neighbours: flat
background, sky and blank card give near-identical neighbours and score low; print,
edges and corners score high. Mutual nearest neighbours and RANSAC then compare a few
hundred cells instead of ~600-800 (the re-rank cost grows with their product)."""

from dataclasses import replace

import numpy as np

from photosearch.common.local import grid_contrast
from tools.quality.extract import LocalFeatures


def local_contrast(features: LocalFeatures) -> np.ndarray:
    """(n,) float32: 1 - mean cosine of each cell with its grid neighbours (0 when alone);
    the services' rule (photosearch.common.local), on float cells."""
    rows, cols = features.grid
    n, dim = features.cells.shape
    if n != rows * cols:
        raise ValueError(f"local contrast needs the full {rows}x{cols} grid, got {n} cells")
    return grid_contrast(features.cells.reshape(rows, cols, dim).astype(np.float32, copy=False))


def keep_salient(features: LocalFeatures, budget: int) -> LocalFeatures:
    """The `budget` cells of highest local contrast (ties: lower cell index first), in
    grid order, with their positions; the grid keeps its size so coordinates are
    unchanged. Photos with at most `budget` cells are returned as they are."""
    if budget <= 0:
        raise ValueError(f"a cell budget must be positive, got {budget}")
    if len(features.cells) <= budget:
        return features
    contrast = local_contrast(features)
    chosen = np.sort(np.argsort(-contrast, kind="stable")[:budget])
    return replace(features, cells=features.cells[chosen], xy=features.xy[chosen])
