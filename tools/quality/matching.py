"""Local-descriptor matching for re-ranking: mutual nearest neighbours between the
cells of a query and of a catalog photo, then a geometric check that the matched
cells agree on one affine map (RANSAC). Plain numpy; descriptors of any model.

Coordinates are in cells of each photo's own grid, so a threshold of 1.5 means "within
one and a half cells" whatever the photo's size."""

from dataclasses import dataclass

import numpy as np

from tools.quality.extract import LocalFeatures


@dataclass(frozen=True)
class Matches:
    query: np.ndarray  # indices into the query's cells
    catalog: np.ndarray  # indices into the catalog photo's cells
    similarity: np.ndarray

    def __len__(self) -> int:
        return len(self.query)


def mutual_nearest(q: np.ndarray, c: np.ndarray, min_similarity: float) -> Matches:
    """Pairs (i, j) where j is i's most similar catalog cell and i is j's most similar
    query cell, with cosine similarity above `min_similarity`. Rows must be unit length."""
    if len(q) == 0 or len(c) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return Matches(empty, empty, np.zeros(0, dtype=np.float32))
    sims = q.astype(np.float32, copy=False) @ c.astype(np.float32, copy=False).T
    qi = np.arange(len(q))
    best_c = np.argmax(sims, axis=1)
    best = sims[qi, best_c]
    # i is j's best query cell when its similarity reaches the column maximum (a
    # column-wise max is much cheaper than a column-wise argmax on a row-major matrix).
    column_max = sims.max(axis=0)
    keep = np.flatnonzero((best >= column_max[best_c]) & (best > min_similarity))
    # Exact ties: one query cell per catalog cell (the first).
    _, first = np.unique(best_c[keep], return_index=True)
    keep = keep[np.sort(first)]
    return Matches(qi[keep], best_c[keep], best[keep])


def cell_coordinates(features: LocalFeatures) -> np.ndarray:
    rows, cols = features.grid
    return features.xy * np.asarray([cols, rows], dtype=np.float32)


def _solve_affine(src: np.ndarray, dst: np.ndarray) -> np.ndarray | None:
    """Least-squares 2x3 affine A with dst ~ A @ [src, 1]."""
    design = np.hstack([src, np.ones((len(src), 1), dtype=src.dtype)])
    solution, _, rank, _ = np.linalg.lstsq(design, dst, rcond=None)
    if rank < 3:
        return None
    out: np.ndarray = solution.T
    return out


def affine_inliers(
    src: np.ndarray,
    dst: np.ndarray,
    *,
    threshold: float = 1.5,
    iterations: int = 200,
    seed: int = 0,
    max_scale: float = 8.0,
) -> np.ndarray:
    """RANSAC over minimal samples of 3 pairs; boolean mask of the largest consensus
    (re-fitted once on it). Maps whose linear part is degenerate or scales more than
    `max_scale` (or less than its inverse) are rejected: they are not a view change."""
    n = len(src)
    if n < 3:
        return np.zeros(n, dtype=bool)
    rng = np.random.default_rng(seed)
    # Samples with a repeated pair are degenerate (zero determinant) and dropped below.
    samples = rng.integers(0, n, size=(iterations, 3))
    s = src[samples].astype(np.float64)  # (it, 3, 2)
    d = dst[samples].astype(np.float64)
    design = np.concatenate([s, np.ones((iterations, 3, 1))], axis=2)  # (it, 3, 3)
    det = np.linalg.det(design)
    ok = np.abs(det) > 1e-6
    best = np.zeros(n, dtype=bool)
    if not ok.any():
        return best
    maps = np.linalg.solve(design[ok], d[ok])  # (m, 3, 2): [x y 1] @ M = dst
    linear = maps[:, :2, :]
    scale = np.sqrt(np.abs(np.linalg.det(linear)))
    plausible = (scale < max_scale) & (scale > 1.0 / max_scale)
    maps = maps[plausible]
    if len(maps) == 0:
        return best
    homogeneous = np.hstack([src, np.ones((n, 1))]).astype(np.float64)
    projected = np.einsum("nk,mkj->mnj", homogeneous, maps)  # (m, n, 2)
    errors = np.linalg.norm(projected - dst[None].astype(np.float64), axis=2)
    inliers = errors < threshold
    counts = inliers.sum(axis=1)
    best = inliers[int(np.argmax(counts))]
    if best.sum() >= 3:
        refit = _solve_affine(src[best].astype(np.float64), dst[best].astype(np.float64))
        if refit is not None:
            errors = np.linalg.norm(homogeneous @ refit.T - dst, axis=1)
            refined = errors < threshold
            if refined.sum() >= best.sum():
                best = refined
    mask: np.ndarray = np.asarray(best, dtype=bool)
    return mask


@dataclass(frozen=True)
class LocalScore:
    matches: int  # mutual nearest neighbours above the similarity floor
    inliers: int  # of those, how many agree on one affine map


def local_score(
    query: LocalFeatures,
    catalog: LocalFeatures,
    *,
    min_similarity: float = 0.5,
    verify: bool = True,
    threshold: float = 1.5,
    iterations: int = 200,
) -> LocalScore:
    matches = mutual_nearest(query.cells, catalog.cells, min_similarity)
    if not verify or len(matches) < 3:
        return LocalScore(len(matches), len(matches) if not verify else 0)
    mask = affine_inliers(
        cell_coordinates(catalog)[matches.catalog],
        cell_coordinates(query)[matches.query],
        threshold=threshold,
        iterations=iterations,
    )
    return LocalScore(len(matches), int(mask.sum()))
