"""Local-descriptor matching, batched: every (query view, catalog photo) pair at once.

For each pair: mutual nearest neighbours between the two photos' cells with cosine above
a floor, then an affine RANSAC over the matched cells' grid positions (3-pair samples,
one refit on the best consensus). Same rules and same random samples as the per-pair
reference (tools/quality/matching.py): a pair with n matches draws its samples from
`default_rng(seed).integers(0, n, (iterations, 3))`, so both find the same matches and
the same inliers, except where a match lies exactly on the threshold of a hypothesis
(the hypotheses are solved in closed form here, by LAPACK there: the last bit decides;
0.17 % of pairs on real descriptors, by at most 2 inliers).

Batched instead of looped: one matrix product of all query cells against all catalog
cells, the mutual-neighbour test vectorised over every block, RANSAC hypotheses of all
pairs solved and scored together. Coordinates are in cells of each photo's own grid."""

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from photosearch.common.local import INT8_SCALE, LocalGrid

Array = npt.NDArray[np.float64]
# Pairs verified together (sorted by match count, so a chunk pads little).
PAIRS_PER_CHUNK = 20


@dataclass(frozen=True)
class MatchSettings:
    min_similarity: float = 0.5  # cosine floor for a mutual nearest-neighbour match
    threshold: float = 1.5  # RANSAC inlier distance, in cells
    iterations: int = 200  # RANSAC hypotheses per pair
    max_scale: float = 8.0  # affine maps scaling more (or less than 1/max_scale) are no view change
    seed: int = 0


@dataclass(frozen=True)
class PairEvidence:
    """(views, photos) arrays: mutual matches and verified inliers of each pair."""

    matches: npt.NDArray[np.int64]
    inliers: npt.NDArray[np.int64]


@dataclass(frozen=True)
class _Padded:
    cells: npt.NDArray[np.float32]  # (g, width, dim), zero rows as padding
    xy: npt.NDArray[np.float32]  # (g, width, 2)
    counts: npt.NDArray[np.int64]  # (g,)


def _pad(grids: Sequence[LocalGrid], dim: int) -> _Padded:
    """Grids stacked, padded to the longest; int8 -> unit float32 in one pass."""
    width = max(1, max(len(g) for g in grids))
    codes = np.zeros((len(grids), width, dim), dtype=np.int8)
    index = np.zeros((len(grids), width), dtype=np.int32)
    cols = np.ones((len(grids), 1), dtype=np.int32)
    for i, grid in enumerate(grids):
        codes[i, : len(grid)] = grid.codes
        index[i, : len(grid)] = grid.index
        cols[i] = grid.cols
    # As LocalGrid.unit(), so that both give the same cosines to the last bit.
    cells = codes.astype(np.float32) / np.float32(INT8_SCALE)
    cells /= np.maximum(np.linalg.norm(cells, axis=2, keepdims=True), 1e-12)  # padding stays 0
    ys, xs = np.divmod(index, cols)
    xy = np.stack([xs, ys], axis=2).astype(np.float32) + np.float32(0.5)
    return _Padded(cells, xy, np.asarray([len(g) for g in grids], dtype=np.int64))


@lru_cache(maxsize=1024)
def _samples(n: int, iterations: int, seed: int) -> npt.NDArray[np.int64]:
    """The reference's RANSAC samples for a pair with n matches (read-only, shared)."""
    samples = np.random.default_rng(seed).integers(0, n, size=(iterations, 3))
    samples.setflags(write=False)
    return samples


def match_pairs(
    views: Sequence[LocalGrid], photos: Sequence[LocalGrid], settings: MatchSettings
) -> PairEvidence:
    """Evidence of every (view, photo) pair; all grids of one dimension."""
    shape = (len(views), len(photos))
    if not views or not photos:
        empty = np.zeros(shape, dtype=np.int64)
        return PairEvidence(empty, empty.copy())
    dim = views[0].dim
    q, c = _pad(views, dim), _pad(photos, dim)
    nv, nq = q.cells.shape[:2]
    nc, mc = c.cells.shape[:2]
    sims = (q.cells.reshape(nv * nq, dim) @ c.cells.reshape(nc * mc, dim).T).reshape(nv, nq, nc, mc)
    # Padding is all-zero vectors: similarity 0, below any useful floor, so it never
    # wins a row or column whose match passes it.
    best_c = np.argmax(sims, axis=3)  # (nv, nq, nc)
    best = sims.reshape(-1, mc)[np.arange(best_c.size), best_c.ravel()].reshape(best_c.shape)
    column_max = sims.max(axis=1)  # (nv, nc, mc)
    v_idx = np.arange(nv)[:, None, None]
    c_idx = np.arange(nc)[None, None, :]
    mutual = (best >= column_max[v_idx, c_idx, best_c]) & (best > settings.min_similarity)
    # Order entries by (view, photo, query cell), as the reference walks each pair.
    mutual_t = mutual.transpose(0, 2, 1)  # (nv, nc, nq)
    pair, cell = np.nonzero(mutual_t.reshape(nv * nc, nq))
    target = best_c.transpose(0, 2, 1).reshape(nv * nc, nq)[pair, cell]
    # Exact ties: one query cell per catalog cell (the first), as the reference does.
    _, first = np.unique(pair * mc + target, return_index=True)
    keep = np.sort(first)
    pair, cell, target = pair[keep], cell[keep], target[keep]
    counts = np.bincount(pair, minlength=nv * nc)
    inliers = _verify(pair, cell, target, counts, q, c, nc, settings)
    return PairEvidence(counts.reshape(shape), inliers.reshape(shape))


def _verify(
    pair: npt.NDArray[np.intp],
    cell: npt.NDArray[np.intp],
    target: npt.NDArray[np.intp],
    counts: npt.NDArray[np.int64],
    q: _Padded,
    c: _Padded,
    nc: int,
    settings: MatchSettings,
) -> npt.NDArray[np.int64]:
    """Inliers of each pair's matches under its best affine map (0 under 3 matches).
    Pairs are verified in chunks of similar match counts, padded to the chunk's longest."""
    out = np.zeros(len(counts), dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    # src = catalog cell positions, dst = query cell positions (the reference maps
    # catalog onto query).
    src = c.xy[pair % nc, target].astype(np.float64)
    dst = q.xy[pair // nc, cell].astype(np.float64)
    active = np.flatnonzero(counts >= 3)
    if len(active) == 0:
        return out
    active = active[np.argsort(counts[active], kind="stable")]
    for chunk in np.array_split(active, -(-len(active) // PAIRS_PER_CHUNK)):
        sizes = counts[chunk]
        width = int(sizes.max())
        slots = np.minimum(np.arange(width)[None, :], sizes[:, None] - 1)
        rows = starts[chunk][:, None] + slots  # padding repeats a pair's last match
        valid = np.arange(width)[None, :] < sizes[:, None]
        out[chunk] = _ransac(src[rows], dst[rows], valid, sizes, settings)
    return out


def _affine_maps(s: Array, d: Array) -> tuple[Array, npt.NDArray[np.bool_]]:
    """Affine maps through 3 point pairs, closed form: s, d (..., 3, 2) -> M (..., 3, 2)
    with [x y 1] @ M = dst, and which samples are not degenerate (|det| > 1e-6, as the
    reference; grid positions are multiples of 0.5, so a degenerate sample has a
    determinant of exactly 0)."""
    a, b = s[..., 0, 0], s[..., 0, 1]
    dd, e = s[..., 1, 0], s[..., 1, 1]
    g, h = s[..., 2, 0], s[..., 2, 1]
    # Rows of the inverse of [[a b 1] [d e 1] [g h 1]], times its determinant.
    inverse = (
        (e - h, h - b, b - e),
        (g - dd, a - g, dd - a),
        (dd * h - e * g, b * g - a * h, a * e - b * dd),
    )
    det = a * inverse[0][0] + b * inverse[1][0] + inverse[2][0]
    ok = np.abs(det) > 1e-6
    scale = 1.0 / np.where(ok, det, 1.0)
    maps = np.empty((*s.shape[:-2], 3, 2))
    for row, (c0, c1, c2) in enumerate(inverse):
        for column in range(2):
            y0, y1, y2 = d[..., 0, column], d[..., 1, column], d[..., 2, column]
            maps[..., row, column] = (c0 * y0 + c1 * y1 + c2 * y2) * scale
    return maps, ok


def _ransac(
    src: Array,
    dst: Array,
    valid: npt.NDArray[np.bool_],
    sizes: npt.NDArray[np.int64],
    settings: MatchSettings,
) -> npt.NDArray[np.int64]:
    """src, dst (p, width, 2) padded matches of p pairs -> inliers of each pair."""
    p, width = valid.shape
    it = settings.iterations
    samples = np.stack([_samples(int(n), it, settings.seed) for n in sizes])  # (p, it, 3)
    rows = np.arange(p)[:, None, None]
    maps, ok = _affine_maps(src[rows, samples], dst[rows, samples])  # (p, it, 3, 2)
    scale = np.sqrt(np.abs(maps[..., 0, 0] * maps[..., 1, 1] - maps[..., 0, 1] * maps[..., 1, 0]))
    ok &= (scale < settings.max_scale) & (scale > 1.0 / settings.max_scale)
    homogeneous = np.concatenate([src, np.ones((p, width, 1))], axis=2)  # (p, width, 3)
    inliers = _within(homogeneous, dst, valid, maps, settings.threshold)
    votes = np.where(ok, inliers.view(np.uint8).sum(axis=1, dtype=np.int32), -1)  # (p, it)
    chosen = np.argmax(votes, axis=1)  # the first best hypothesis, as the reference
    best = inliers[np.arange(p), :, chosen] & (votes.max(axis=1) >= 0)[:, None]
    best_count = best.sum(axis=1)
    refined = _refit(homogeneous, dst, best, valid, settings.threshold)
    refined_count = refined.sum(axis=1)
    take = (best_count >= 3) & (refined_count >= best_count)
    out: npt.NDArray[np.int64] = np.where(take, refined_count, best_count).astype(np.int64)
    return out


def _within(
    homogeneous: Array, dst: Array, valid: npt.NDArray[np.bool_], maps: Array, threshold: float
) -> npt.NDArray[np.bool_]:
    """(p, width, it): is each match within `threshold` of where each hypothesis puts it
    (padding: never)? The squared distance is quadratic in the match's positions, so it
    is one float64 product: per-match features (x², y², xy, x, y, 1, qx·x, ...) times
    per-hypothesis coefficients. Distances within rounding of the threshold (a bound
    from the magnitudes of both) are computed again as the reference does."""
    x, y = homogeneous[:, :, 0], homogeneous[:, :, 1]
    qx, qy = dst[:, :, 0], dst[:, :, 1]
    features = np.stack(
        [x * x, y * y, x * y, x, y, np.ones_like(x), qx * x, qx * y, qx, qy * x, qy * y, qy,
         qx * qx + qy * qy],
        axis=2,
    )  # (p, width, 13)  # fmt: skip
    a, b, c = maps[:, :, 0, 0], maps[:, :, 1, 0], maps[:, :, 2, 0]
    d, e, f = maps[:, :, 0, 1], maps[:, :, 1, 1], maps[:, :, 2, 1]
    coefficients = np.stack(
        [a * a + d * d, b * b + e * e, 2 * (a * b + d * e), 2 * (a * c + d * f),
         2 * (b * c + e * f), c * c + f * f, -2 * a, -2 * b, -2 * c, -2 * d, -2 * e, -2 * f,
         np.ones_like(a)],
        axis=1,
    )  # (p, 13, it)  # fmt: skip
    reach = np.abs(np.where(valid[..., None], features, 0.0)).max(axis=1)  # (p, 13)
    band = np.finfo(np.float64).eps * 64.0 * np.einsum("pk,pkm->pm", reach, np.abs(coefficients))
    features[~valid, 12] = 1e12  # padding lands far from everything
    squared = np.matmul(features, coefficients)  # (p, width, it)
    limit = threshold * threshold
    inside: npt.NDArray[np.bool_] = squared < (limit - band)[:, None, :]
    unsure = np.flatnonzero((squared < (limit + band)[:, None, :]) ^ inside)
    if len(unsure):
        pi, ni, hi = np.unravel_index(unsure, squared.shape)
        exact = np.einsum("nk,nkj->nj", homogeneous[pi, ni], maps[pi, hi]) - dst[pi, ni]
        inside.flat[unsure] = np.linalg.norm(exact, axis=1) < threshold
    return inside


def _refit(
    homogeneous: Array,
    dst: Array,
    best: npt.NDArray[np.bool_],
    valid: npt.NDArray[np.bool_],
    threshold: float,
) -> npt.NDArray[np.bool_]:
    """Least squares on each pair's consensus, as numpy's lstsq (SVD; singular values
    under eps * max(rows, 3) * the largest are dropped; rank < 3: no refit, nothing
    counts as refined). Rows outside the consensus are zeroed, which leaves the
    solution as it is."""
    weights = best[..., None].astype(np.float64)
    a, b = homogeneous * weights, dst * weights
    u, sv, vt = np.linalg.svd(a, full_matrices=False)  # (p, w, 3), (p, 3), (p, 3, 3)
    rows = np.maximum(best.sum(axis=1), 3)
    tolerance = np.finfo(np.float64).eps * rows[:, None] * sv[:, :1]
    kept = sv > tolerance
    inverse = np.where(kept, 1.0 / np.where(kept, sv, 1.0), 0.0)
    projected_b = np.einsum("pnj,pnk->pjk", u, b) * inverse[..., None]
    solution = np.einsum("pji,pjk->pik", vt, projected_b)  # (p, 3, 2): pinv(a) @ b
    errors = np.linalg.norm(homogeneous @ solution - dst, axis=2)
    refined: npt.NDArray[np.bool_] = (errors < threshold) & valid & kept.all(axis=1)[:, None]
    return refined
