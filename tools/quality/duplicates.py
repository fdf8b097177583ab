"""Near-duplicate false negatives: a copy of a catalog photo (re-encoded, mirrored,
brightened, ...) uploaded as another item must show up in the duplicate report
paired with its source. Counted per transform, and the threshold that would have
caught every near-duplicate, with what it costs in extra (false) pairs."""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class PairScore:
    transform: str
    copy: str
    score: float  # similarity of the copy's fingerprint and its source's


def false_negatives(
    pairs: Sequence[PairScore], threshold: float, reported: set[str] | None = None
) -> dict[str, list[str]]:
    """Per transform, the copies the report misses: not in `reported` (the copies the
    service paired with their source) when given, else scoring below `threshold`."""
    missed: dict[str, list[str]] = {}
    for p in pairs:
        found = p.copy in reported if reported is not None else p.score >= threshold
        missed.setdefault(p.transform, [])
        if not found:
            missed[p.transform].append(p.copy)
    return missed


def recommend_threshold(
    pairs: Sequence[PairScore], near_duplicate: Sequence[str], step: float = 0.01
) -> float:
    """The highest threshold on a `step` grid at or below the weakest near-duplicate
    pair: every near-duplicate is reported, with no margin wasted beyond the grid."""
    scores = [p.score for p in pairs if p.transform in near_duplicate]
    if not scores:
        raise ValueError("no near-duplicate pairs to choose a threshold from")
    return math.floor(min(scores) / step) * step


def distinct_pairs_above(matrix: np.ndarray, owners: Sequence[str], threshold: float) -> int:
    """How many pairs of photos of different items score at least `threshold`: what a
    threshold costs in reports that are not duplicates (unit rows)."""
    if len(matrix) < 2:
        return 0
    sims = matrix @ matrix.T
    codes = np.unique(np.asarray(owners), return_inverse=True)[1]
    different = codes[:, None] != codes[None, :]
    upper = np.triu(np.ones_like(different), k=1)
    return int(np.sum((sims >= threshold) & different & upper))


def summary(
    pairs: Sequence[PairScore],
    threshold: float,
    near_duplicate: Sequence[str],
    reported: set[str] | None = None,
) -> dict[str, Any]:
    missed = false_negatives(pairs, threshold, reported)
    by_transform: dict[str, list[float]] = {}
    for p in pairs:
        by_transform.setdefault(p.transform, []).append(p.score)
    return {
        "threshold": round(threshold, 4),
        "near_duplicate_false_negatives": sum(len(missed.get(t, [])) for t in near_duplicate),
        "transforms": {
            t: {
                "copies": len(scores),
                "false_negatives": len(missed.get(t, [])),
                "near_duplicate": t in near_duplicate,
                "min_score": round(min(scores), 4),
                "median_score": round(float(np.median(scores)), 4),
                "missed": missed.get(t, [])[:10],
            }
            for t, scores in sorted(by_transform.items())
        },
    }
