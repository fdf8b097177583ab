"""Retrieval metrics over ranked candidate lists: recall@k, MRR, the score of the right
item against the best wrong one (the margin), and a suggested decision threshold."""

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

RECALL_AT = (1, 5, 10)


@dataclass(frozen=True)
class Ranking:
    """What one query got back: candidate items, best first, with their scores."""

    query: str
    view: str
    truth: str
    items: tuple[str, ...]
    scores: tuple[float, ...]

    @property
    def rank(self) -> int | None:
        """1-based position of the right item; None when it was not returned."""
        try:
            return self.items.index(self.truth) + 1
        except ValueError:
            return None

    @property
    def correct_score(self) -> float | None:
        rank = self.rank
        return None if rank is None else self.scores[rank - 1]

    @property
    def best_wrong_score(self) -> float | None:
        for item, score in zip(self.items, self.scores, strict=True):
            if item != self.truth:
                return score
        return None

    @property
    def margin(self) -> float | None:
        right, wrong = self.correct_score, self.best_wrong_score
        if right is None or wrong is None:
            return None
        return right - wrong


def rank_items(
    query: str, view: str, truth: str, item_scores: dict[str, float], k: int | None = None
) -> Ranking:
    """Rank items by score (ties broken by item id, as the search service does)."""
    ordered = sorted(item_scores.items(), key=lambda kv: (-kv[1], kv[0]))[:k]
    return Ranking(
        query, view, truth, tuple(i for i, _ in ordered), tuple(float(s) for _, s in ordered)
    )


def suggest_threshold(right: Sequence[float], wrong: Sequence[float]) -> float | None:
    """The score that best separates right matches from the best wrong ones: maximises
    (share of right scores >= t) + (share of wrong scores < t), Youden's J. Midway
    between neighbouring scores, so it does not sit exactly on a measured value; of
    equally good cuts the highest."""
    if not right or not wrong:
        return None
    values = np.unique(np.concatenate([np.asarray(right), np.asarray(wrong)]))
    cuts = np.concatenate([[values[0] - 1e-3], (values[:-1] + values[1:]) / 2, [values[-1] + 1e-3]])
    r = np.sort(np.asarray(right))
    w = np.sort(np.asarray(wrong))
    accept_right = 1.0 - np.searchsorted(r, cuts, side="left") / len(r)
    reject_wrong = np.searchsorted(w, cuts, side="left") / len(w)
    separation = accept_right + reject_wrong
    # Of equally good cuts, the highest: fewer wrong matches accepted.
    best = len(separation) - 1 - int(np.argmax(separation[::-1]))
    return float(cuts[best])


@dataclass
class Summary:
    queries: int
    recall: dict[int, float]
    mrr: float
    margin_mean: float | None
    margin_p10: float | None
    right_scores: list[float] = field(repr=False)
    wrong_scores: list[float] = field(repr=False)
    threshold: float | None = None
    # Of the queries whose top score clears the threshold, the share whose top item is right.
    precision_at_threshold: float | None = None
    # Share of all queries whose top item is right and clears the threshold.
    accepted_right: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "queries": self.queries,
            **{f"recall@{k}": round(v, 4) for k, v in self.recall.items()},
            "mrr": round(self.mrr, 4),
            "margin_mean": _round(self.margin_mean),
            "margin_p10": _round(self.margin_p10),
            "threshold": _round(self.threshold),
            "precision_at_threshold": _round(self.precision_at_threshold),
            "accepted_right": _round(self.accepted_right),
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def summarise(rankings: Iterable[Ranking], recall_at: Sequence[int] = RECALL_AT) -> Summary:
    rows = list(rankings)
    n = len(rows)
    if n == 0:
        return Summary(0, {k: math.nan for k in recall_at}, math.nan, None, None, [], [])
    ranks = [r.rank for r in rows]
    recall = {k: sum(1 for x in ranks if x is not None and x <= k) / n for k in recall_at}
    mrr = sum(1.0 / x for x in ranks if x is not None) / n
    margins = [m for m in (r.margin for r in rows) if m is not None]
    right = [s for s in (r.correct_score for r in rows) if s is not None]
    wrong = [s for s in (r.best_wrong_score for r in rows) if s is not None]
    threshold = suggest_threshold(right, wrong)
    summary = Summary(
        n,
        recall,
        mrr,
        float(np.mean(margins)) if margins else None,
        float(np.percentile(margins, 10)) if margins else None,
        right,
        wrong,
        threshold,
    )
    if threshold is not None:
        accepted = [r for r in rows if r.scores and r.scores[0] >= threshold]
        good = sum(1 for r in accepted if r.items[0] == r.truth)
        summary.precision_at_threshold = good / len(accepted) if accepted else None
        summary.accepted_right = good / n
    return summary


def by_view(rankings: Iterable[Ranking]) -> dict[str, list[Ranking]]:
    groups: dict[str, list[Ranking]] = {}
    for r in rankings:
        groups.setdefault(r.view, []).append(r)
    return dict(sorted(groups.items()))


def recall_curve(rankings: Sequence[Ranking], max_k: int) -> list[float]:
    """recall@k for k = 1..max_k."""
    n = len(rankings)
    ranks = [r.rank for r in rankings]
    return [
        sum(1 for x in ranks if x is not None and x <= k) / n if n else 0.0
        for k in range(1, max_k + 1)
    ]
