"""Ranking of catalog items for one query: the global search the service does today
(cosine over every stored vector of an item, best one counts), then an optional
re-ranking of the top candidates by verified local matches.

The interface a later move into search keeps: `global_item_scores` is what pgvector
answers; `rerank` takes the query's local descriptors (sent by the browser) and the
stored local descriptors of the candidates' images."""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from tools.quality.extract import LocalFeatures
from tools.quality.matching import LocalScore, local_score


@dataclass(frozen=True)
class RerankSettings:
    top_k: int = 10  # candidates from the global search that get re-ranked
    min_similarity: float = 0.5  # cosine floor for a mutual nearest-neighbour match
    verify: bool = True  # count only matches consistent with one affine map
    ransac_threshold: float = 1.5  # in cells
    ransac_iterations: int = 200
    # Final score of a re-ranked candidate: global + weight * min(inliers, saturate) /
    # saturate. With weight > 1 any verified match outranks any global-only score
    # difference, while the global score still orders candidates with equal evidence.
    weight: float = 1.0
    saturate: int = 30


def global_item_scores(
    query: np.ndarray, catalog: np.ndarray, owners: Sequence[str]
) -> dict[str, float]:
    """Cosine of `query` (unit, (dim,) or (views, dim) for query-side views) with every
    catalog vector (unit rows); each item scored by its best vector (and best view)."""
    sims = np.atleast_2d(query) @ catalog.T  # (views, vectors)
    best = sims.max(axis=0)
    scores: dict[str, float] = {}
    for owner, score in zip(owners, best.tolist(), strict=True):
        if score > scores.get(owner, -np.inf):
            scores[owner] = float(score)
    return scores


def top_items(scores: Mapping[str, float], k: int) -> list[str]:
    return [i for i, _ in sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:k]]


def best_local(
    queries: Sequence[LocalFeatures],
    catalog: Sequence[LocalFeatures],
    settings: RerankSettings,
) -> LocalScore:
    """Best evidence over the query's views (e.g. rotations) and the item's photos."""
    best = LocalScore(0, 0)
    for q in queries:
        for c in catalog:
            s = local_score(
                q,
                c,
                min_similarity=settings.min_similarity,
                verify=settings.verify,
                threshold=settings.ransac_threshold,
                iterations=settings.ransac_iterations,
            )
            if (s.inliers, s.matches) > (best.inliers, best.matches):
                best = s
    return best


def rerank(
    scores: Mapping[str, float],
    query_local: Sequence[LocalFeatures],
    catalog_local: Callable[[str], Sequence[LocalFeatures]],
    settings: RerankSettings,
) -> dict[str, float]:
    """New item scores: the top-k candidates get their verified local evidence added;
    the others keep their global score (they stay below every re-ranked candidate with
    evidence)."""
    out = dict(scores)
    for item in top_items(scores, settings.top_k):
        evidence = best_local(query_local, catalog_local(item), settings)
        count = evidence.inliers if settings.verify else evidence.matches
        out[item] = (
            scores[item] + settings.weight * min(count, settings.saturate) / settings.saturate
        )
    return out
