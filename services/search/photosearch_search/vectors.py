"""Checks on fingerprints (query and stored) and the grouping of image hits into items."""

from collections.abc import Iterable, Sequence

import numpy as np

from photosearch.common.errors import InvalidArgument
from photosearch_search.domain import Candidate, Filters, ImageHit, Model, Vector


def unit_vector(values: Sequence[float], dim: int, what: str, model_id: str) -> Vector:
    """The vector scaled to unit length; InvalidArgument when it cannot be one of `dim`."""
    if len(values) != dim:
        raise InvalidArgument(
            f"{what} has {len(values)} values but model {model_id!r} makes {dim}-d "
            "fingerprints: compute it with the same model"
        )
    vector = np.asarray(values, dtype=np.float32)
    if not np.all(np.isfinite(vector)):
        raise InvalidArgument(f"{what} contains NaN or infinite values")
    norm = float(np.linalg.norm(vector.astype(np.float64)))
    if norm == 0.0:
        raise InvalidArgument(f"{what} is all zeros: it has no direction to compare")
    return (vector / np.float32(norm)).astype(np.float32)


def query_vector(values: Sequence[float], model: Model) -> Vector:
    return unit_vector(values, model.dim, "the query vector", model.model_id)


def check_k(k: int, max_k: int) -> int:
    """0 means the default of 10."""
    if k == 0:
        return min(10, max_k)
    if k < 0 or k > max_k:
        raise InvalidArgument(f"k must be between 1 and {max_k}, got {k}")
    return k


def check_min_score(min_score: float, upper: float = 1.0) -> float:
    """0 means no minimum (cosine similarity ranges over [-1, 1]; a re-ranked score
    over [-1, `upper`])."""
    if not np.isfinite(min_score) or not -1.0 <= min_score <= upper:
        what = "a cosine similarity" if upper == 1.0 else "a re-ranked score"
        raise InvalidArgument(f"min_score must be {what} in [-1, {upper:g}], got {min_score}")
    return min_score if min_score != 0.0 else -1.0


def _clean(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted({v.strip().lower() for v in values if v.strip()}))


def make_filters(series: Iterable[str], makers: Iterable[str], tags: Iterable[str]) -> Filters:
    """Filters compare lower-cased, trimmed values; blanks are ignored."""
    return Filters(series=_clean(series), makers=_clean(makers), tags=_clean(tags))


def best_per_item(hits: Iterable[ImageHit], k: int, min_score: float) -> list[Candidate]:
    """Each item once, scored by its best image, best first; at most k."""
    best: dict[str, ImageHit] = {}
    for hit in hits:
        seen = best.get(hit.item_id)
        if seen is None or hit.distance < seen.distance:
            best[hit.item_id] = hit
    ranked = sorted(best.values(), key=lambda h: (h.distance, h.item_id))
    candidates = [Candidate(h.item_id, h.image_id, 1.0 - h.distance) for h in ranked]
    return [c for c in candidates if c.score >= min_score][:k]
