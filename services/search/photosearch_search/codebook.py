"""Visual words of local descriptors: a codebook (spherical k-means of stored cells) that
turns each photo's cells into a set of words, weighted by how rare each word is (idf).
Photos that share many rare words with a query are likely the same object, whatever
the fingerprint says: that is the region index's second source of candidates.

Plain numpy, no I/O. Training is deterministic for a given set of photos, whatever
their ids or the order they come in (photos are ordered by their codes' hash first),
so an offline replica of the index trains the very codebook search trains."""

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from photosearch.common.local import LocalGrid

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]
ASSIGN_CHUNK = 4096  # cells compared with every centroid at once (memory: chunk x words)


@dataclass(frozen=True)
class CodebookRule:
    cells_per_word: float = 3.0  # stored cells per word: the codebook's size
    min_words: int = 64
    max_words: int = 8192
    samples_per_word: int = 24  # cells k-means learns from, per word
    iterations: int = 12
    seed: int = 0

    def words_for(self, cells: int) -> int:
        """A power of two near cells / cells_per_word, within the bounds."""
        wanted = max(cells / self.cells_per_word, 1.0)
        words = 2 ** math.floor(math.log2(wanted))
        return int(min(max(words, self.min_words), self.max_words, max(cells, 1)))


@dataclass(frozen=True)
class Codebook:
    version: int
    centroids: F32  # (words, dim), unit rows
    idf: F32  # (words,) ln(photos / photos holding the word)
    photos: int  # photos it was trained on

    @property
    def words(self) -> int:
        return int(self.centroids.shape[0])

    @property
    def dim(self) -> int:
        return int(self.centroids.shape[1])


@dataclass(frozen=True)
class Bag:
    """A photo's (or a query view's) distinct words and their weights: idf over the
    bag's norm, so that the sum over shared words is the cosine of two tf-idf bags."""

    words: I64
    weights: F32


def assign(cells: F32, centroids: F32) -> I64:
    """Nearest centroid (cosine) of each unit cell."""
    out = np.empty(len(cells), dtype=np.int64)
    for start in range(0, len(cells), ASSIGN_CHUNK):
        chunk = cells[start : start + ASSIGN_CHUNK]
        out[start : start + len(chunk)] = np.argmax(chunk @ centroids.T, axis=1)
    return out


def _unit_rows(x: F32) -> F32:
    out: F32 = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    return out


def _ordered(grids: Sequence[LocalGrid]) -> list[LocalGrid]:
    return sorted(grids, key=lambda g: hashlib.sha256(g.codes.tobytes()).digest())


def train(grids: Sequence[LocalGrid], rule: CodebookRule, version: int) -> Codebook:
    """Spherical k-means over a sample of the photos' cells; idf over the photos."""
    if not grids:
        raise ValueError("a codebook needs at least one photo")
    ordered = _ordered(grids)
    cells = np.concatenate([g.unit() for g in ordered]).astype(np.float32)
    words = rule.words_for(len(cells))
    rng = np.random.default_rng(rule.seed)
    size = min(len(cells), words * rule.samples_per_word)
    sample = cells[np.sort(rng.choice(len(cells), size, replace=False))]
    centroids = sample[rng.choice(len(sample), words, replace=False)].copy()
    for _ in range(rule.iterations):
        nearest = assign(sample, centroids)
        sums = np.zeros_like(centroids)
        np.add.at(sums, nearest, sample)
        empty = np.flatnonzero(np.bincount(nearest, minlength=words) == 0)
        if len(empty):  # a word nobody chose starts again from a random cell
            sums[empty] = sample[rng.choice(len(sample), len(empty), replace=False)]
        centroids = _unit_rows(sums)
    holding = np.zeros(words, dtype=np.float64)
    for grid in ordered:
        holding[np.unique(assign(grid.unit(), centroids))] += 1
    idf = np.log(len(ordered) / np.maximum(holding, 1.0)).astype(np.float32)
    return Codebook(version, centroids.astype(np.float32), idf, len(ordered))


def bag_of(codebook: Codebook, grid: LocalGrid) -> Bag:
    words = np.unique(assign(grid.unit(), codebook.centroids))
    idf = codebook.idf[words]
    norm = float(np.sqrt(np.sum(idf.astype(np.float64) ** 2)))
    weights = (idf / norm).astype(np.float32) if norm > 0 else np.zeros(len(words), np.float32)
    return Bag(words, weights)


def similarity(a: Bag, b: Bag) -> float:
    """Cosine of two tf-idf bags (what the region index's SQL sums)."""
    _, ia, ib = np.intersect1d(a.words, b.words, assume_unique=True, return_indices=True)
    return float(np.dot(a.weights[ia].astype(np.float64), b.weights[ib].astype(np.float64)))


def rank_photos(
    views: Sequence[Bag], photos: Mapping[str, Bag], limit: int
) -> list[tuple[str, float]]:
    """(photo key, best similarity over the views), best first, ties by key, at most
    `limit`, only photos sharing a word: the region index's SQL, in memory."""
    scores = {}
    for key, bag in photos.items():
        best = max((similarity(view, bag) for view in views), default=0.0)
        if best > 0:
            scores[key] = best
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
