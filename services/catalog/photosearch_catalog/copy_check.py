"""Copies PDQ's views miss, found without any model: generous candidates, then a strict
check of the pixels themselves (features from copy_features.py).

Candidates, for pairs of images of different items:
- canonical PDQ hashes within LOOSE_DISTANCE bits: copies re-encoded hard, brightened
  or shrunk, which land just past PDQ's match distance (32-42 bits in bench/copy_check.py);
- each image's NEIGHBOURS nearest by colour signature: copies turned by an odd angle or
  zoomed, which no PDQ view matches at all.

The check: the two grey thumbnails correlated as they are (same framing); failing that,
one aligned onto the other by its ORB keypoint matches (Lowe's ratio test, a RANSAC
similarity transform) and correlated where they overlap. A pair is a copy when the
correlation reaches PIXEL_MATCH, chosen on item-disjoint folds (docs/benchmarks/catalog.md).
Pictures of the same scene that differ (a variant, another flavour of a product) correlate
less once aligned, even when their keypoints agree."""

import time
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from photosearch_catalog.copy_features import CopyFeatures
from photosearch_catalog.copy_matching import find_matches

LOOSE_DISTANCE = 47
NEIGHBOURS = 10
PIXEL_MATCH = 0.92  # bench/copy_check.py: its rule on all photos; 0.865 on either fold
AS_IS = "as is"
ALIGNED = "aligned by keypoints"
COMPARE_SIDE = 32  # correlate at this size: what survives blur, JPEG blocks and 64-px copies
_RATIO = 0.8  # Lowe's ratio test
_RANSAC_PIXELS = 3.0  # at 256 px
_MIN_INLIERS = 6
_MIN_OVERLAP = 0.3  # of b's picture
_BLOCK = 256  # rows of colour similarities at once


@dataclass(frozen=True)
class PixelMatch:
    a: int  # the two images (indexes into the features checked)
    b: int
    similarity: float  # correlation of the aligned grey pixels, -1..1
    how: str  # AS_IS or ALIGNED


def candidates(
    canonical: npt.NDArray[np.uint8],
    colours: npt.NDArray[np.float32],
    owners: npt.NDArray[np.int64],
) -> list[tuple[int, int]]:
    """Pairs (i < j) of images of different items to check: close PDQ hashes first
    (closest first), then colour neighbours (most similar first)."""
    n = len(owners)
    loose = find_matches(canonical[:, None, :], owners, LOOSE_DISTANCE, n * NEIGHBOURS + n)
    ordered = {(min(m.a, m.b), max(m.a, m.b)): None for m in loose}
    scored: dict[tuple[int, int], float] = {}
    k = min(NEIGHBOURS, n - 1)
    for start in range(0, n, _BLOCK):
        sims = colours[start : start + _BLOCK] @ colours.T
        sims[owners[start : start + _BLOCK, None] == owners[None, :]] = -np.inf
        if k <= 0:
            break
        nearest = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        for row, found in enumerate(nearest):
            i = start + row
            for j in found.tolist():
                if np.isfinite(sims[row, j]):
                    scored[(min(i, j), max(i, j))] = float(sims[row, j])
    for pair in sorted(scored, key=lambda p: (-scored[p], p)):
        ordered.setdefault(pair)
    return list(ordered)


def _correlation(x: npt.NDArray[np.float32], y: npt.NDArray[np.float32]) -> float:
    x, y = x - x.mean(), y - y.mean()
    norm = float(np.sqrt((x * x).sum() * (y * y).sum()))
    return float((x * y).sum()) / norm if norm > 0 else 0.0


def _small(thumbnail: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    size = (COMPARE_SIDE, COMPARE_SIDE)
    return cv2.resize(thumbnail, size, interpolation=cv2.INTER_AREA).astype(np.float32)


def as_is(a: CopyFeatures, b: CopyFeatures) -> float:
    """Correlation of the two pictures in the same framing."""
    return _correlation(_small(a.thumbnail), _small(b.thumbnail))


def _scale(f: CopyFeatures) -> npt.NDArray[np.float64]:
    th, tw = f.thumbnail.shape
    return np.diag([tw / f.frame[0], th / f.frame[1], 1.0])


def aligned(a: CopyFeatures, b: CopyFeatures) -> float:
    """Correlation where a, aligned onto b by its keypoints, overlaps b; 0 when the
    keypoints do not agree on one turn, zoom and shift."""
    if len(a.descriptors) < 2 or len(b.descriptors) < 2:
        return 0.0
    matches = cv2.BFMatcher(cv2.NORM_HAMMING).knnMatch(a.descriptors, b.descriptors, k=2)
    good = [m[0] for m in matches if len(m) == 2 and m[0].distance < _RATIO * m[1].distance]
    if len(good) < _MIN_INLIERS:
        return 0.0
    source = a.points[[m.queryIdx for m in good]]
    target = b.points[[m.trainIdx for m in good]]
    transform, inliers = cv2.estimateAffinePartial2D(
        source, target, method=cv2.RANSAC, ransacReprojThreshold=_RANSAC_PIXELS
    )
    if transform is None or int(inliers.sum()) < _MIN_INLIERS:
        return 0.0
    scale = float(np.hypot(*transform[0, :2]))
    if not 0.25 <= scale <= 4.0:
        return 0.0
    on_thumbnails = _scale(b) @ np.vstack([transform, [0, 0, 1]]) @ np.linalg.inv(_scale(a))
    th, tw = b.thumbnail.shape
    warped = cv2.warpAffine(a.thumbnail, on_thumbnails[:2], (tw, th), flags=cv2.INTER_LINEAR)
    everywhere = np.full(a.thumbnail.shape, 255, np.uint8)
    covered = cv2.warpAffine(everywhere, on_thumbnails[:2], (tw, th), flags=cv2.INTER_NEAREST)
    half = (max(1, tw // 2), max(1, th // 2))
    warped = cv2.resize(warped, half, interpolation=cv2.INTER_AREA).astype(np.float32)
    target_pixels = cv2.resize(b.thumbnail, half, interpolation=cv2.INTER_AREA)
    inside = cv2.resize(covered, half, interpolation=cv2.INTER_AREA) == 255
    if inside.mean() < _MIN_OVERLAP:
        return 0.0
    return _correlation(warped[inside], target_pixels[inside].astype(np.float32))


def similarity(a: CopyFeatures, b: CopyFeatures, enough: float = PIXEL_MATCH) -> tuple[float, str]:
    """The best correlation of the two pictures (as they are, or aligned either way),
    trying no further once one reaches `enough`."""
    best = (as_is(a, b), AS_IS)
    for first, second in ((a, b), (b, a)):
        if best[0] >= enough:
            break
        best = max(best, (aligned(first, second), ALIGNED))
    return best


def check(
    features: list[CopyFeatures],
    pairs: list[tuple[int, int]],
    threshold: float = PIXEL_MATCH,
    seconds: float = 10.0,
) -> tuple[list[PixelMatch], int]:
    """The pairs whose pixels match, most similar first, and how many pairs were left
    unchecked when `seconds` ran out."""
    deadline = time.monotonic() + seconds
    found: list[PixelMatch] = []
    for done, (i, j) in enumerate(pairs):
        if time.monotonic() >= deadline:
            return _ordered(found), len(pairs) - done
        score, how = similarity(features[i], features[j], threshold)
        if score >= threshold:
            found.append(PixelMatch(i, j, score, how))
    return _ordered(found), 0


def _ordered(found: list[PixelMatch]) -> list[PixelMatch]:
    return sorted(found, key=lambda m: (-m.similarity, m.a, m.b))
