"""Every tunable of search's answer chosen on other items than those it is reported on.

Items of each dataset are dealt into K folds (fixed seed). For each fold, the scoring
rule, the re-ranking depth and the region index's share (`Params`) are chosen on the
queries of the other folds' items, all datasets at once (the mean recall@1 over
datasets, so a small dataset weighs as much as a large one), then the bands'
thresholds on those same queries; the held-out fold's queries are answered with what
was chosen. Nothing about a reported query ever chose a setting.

The bands are fitted so that MATCH answers are right at least `MATCH_PRECISION` of
the time on the training queries of every dataset (each on its own: a rule that is
precise on covers only does not pass), covering as many as can be; the NO_MATCH floor
(which a lead must also clear to make a MATCH) turns away at most `NO_MATCH_LOSS` of
the right answers."""

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np

from photosearch_search.bands import BandSettings
from photosearch_search.domain import Band
from photosearch_search.rerank import RerankSettings
from tools.quality.evidence import Answer, Params, QueryEvidence, answer

MATCH_PRECISION = 0.98
NO_MATCH_LOSS = 0.05
TOP_K = (10, 20, 30)
REGIONS = (0, 5, 10)
WEIGHTS = (0.1, 0.2, 0.3, 0.5)
MARGINS = (0.0, 0.2, 0.4)
MIN_INLIERS = (4, 6, 8, 10)
VERIFIED = tuple(np.round(np.arange(0.2, 3.01, 0.1), 2))
LEADS = tuple(np.round(np.arange(0.02, 0.41, 0.02), 2))


class Labelled(Protocol):
    """A query photo's dataset and the item it shows."""

    @property
    def dataset(self) -> str: ...

    @property
    def truth(self) -> str: ...


def folds(queries: Iterable[Labelled], k: int, seed: int = 0) -> dict[tuple[str, str], int]:
    """(dataset, item) -> fold: each dataset's items shuffled and dealt round-robin."""
    items: dict[str, set[str]] = {}
    for q in queries:
        items.setdefault(q.dataset, set()).add(q.truth)
    rng = np.random.default_rng(seed)
    out = {}
    for dataset in sorted(items):
        ordered = sorted(items[dataset])
        for place, index in enumerate(rng.permutation(len(ordered))):
            out[(dataset, ordered[index])] = place % k
    return out


def by_dataset(queries: Iterable[QueryEvidence]) -> dict[str, list[QueryEvidence]]:
    out: dict[str, list[QueryEvidence]] = {}
    for q in queries:
        out.setdefault(q.dataset, []).append(q)
    return out


def recall_at_1(queries: Sequence[QueryEvidence], params: Params) -> float:
    """Mean over datasets of recall@1 with these parameters."""
    per = by_dataset(queries)
    return float(
        np.mean(
            [
                np.mean([answer(q, params).ranking[0].item_id == q.truth for q in qs])
                for qs in per.values()
            ]
        )
    )


@dataclass(frozen=True)
class Grid:
    """The values each tunable may take (an ablation narrows some to one value)."""

    top_k: tuple[int, ...] = TOP_K
    regions: tuple[int, ...] = REGIONS
    weights: tuple[float, ...] = WEIGHTS
    margins: tuple[float, ...] = MARGINS
    min_inliers: tuple[int, ...] = MIN_INLIERS

    def candidates(self) -> list[Params]:
        out = []
        for top_k, regions, weight, margin, floor in itertools.product(
            self.top_k, self.regions, self.weights, self.margins, self.min_inliers
        ):
            rule = RerankSettings(top_k=top_k, weight=weight, margin=margin, min_inliers=floor)
            out.append(Params(rerank=rule, regions=regions))
        return out


FULL = Grid()


def choose(queries: Sequence[QueryEvidence], grid: Grid = FULL) -> Params:
    """The parameters with the best mean recall@1 on `queries`; ties go to the cheaper
    (fewer candidates matched), then the smaller weight."""

    def key(p: Params) -> tuple[float, int, float]:
        return (-recall_at_1(queries, p), p.rerank.top_k + p.regions, p.rerank.weight)

    best = min(grid.candidates(), key=key)
    return replace(best, bands=fit_bands(queries, best))


@dataclass(frozen=True)
class Outcome:
    """A top answer, as the bands see it."""

    dataset: str
    right: bool
    verification: float
    lead: float
    score: float


def outcomes(queries: Sequence[QueryEvidence], params: Params) -> list[Outcome]:
    out = []
    for q in queries:
        ranked = answer(q, params).ranking
        lead = ranked[0].score - ranked[1].score if len(ranked) > 1 else 0.0
        top = ranked[0]
        out.append(Outcome(q.dataset, top.item_id == q.truth, top.verification, lead, top.score))
    return out


def _is_match(o: Outcome, verified: float, lead: float, possible: float) -> bool:
    """bands.band_of's MATCH rule."""
    return (o.verification > 0 and o.verification >= verified) or (
        o.lead >= lead and o.score >= possible
    )


def fit_bands(queries: Sequence[QueryEvidence], params: Params) -> BandSettings:
    found = outcomes(queries, params)
    datasets = sorted({o.dataset for o in found})

    def weighted(selected: Sequence[bool]) -> tuple[float, float]:
        """(lowest precision over datasets, mean coverage) of the MATCH answers."""
        precisions, coverages = [], []
        for d in datasets:
            rows = [(o, s) for o, s in zip(found, selected, strict=True) if o.dataset == d]
            chosen = [o for o, s in rows if s]
            precisions.append(sum(o.right for o in chosen) / len(chosen) if chosen else 1.0)
            coverages.append(len(chosen) / len(rows))
        return min(precisions), float(np.mean(coverages))

    # The NO_MATCH floor first (it also bounds MATCH by lead): the right answers' scores.
    right = [o.score for o in found if o.right]
    possible = float(np.quantile(right, NO_MATCH_LOSS)) if right else -1.0
    best: tuple[float, float, float] | None = None
    for verified, lead in itertools.product(VERIFIED, LEADS):
        selected = [_is_match(o, verified, lead, possible) for o in found]
        precision, coverage = weighted(selected)
        if precision >= MATCH_PRECISION and (best is None or coverage > best[0]):
            best = (coverage, float(verified), float(lead))
    verified, lead = (best[1], best[2]) if best else (math.inf, math.inf)
    return BandSettings(verified_above=verified, match_margin=lead, possible_above=possible)


@dataclass(frozen=True)
class Held:
    """One held-out query's answer, in the catalog and with its fold's items left out
    (as the mesh searches it: tools/quality/mesh_folds.py)."""

    query: QueryEvidence
    fold: int
    params: Params
    inside: Answer
    outside: Answer

    def scored(self) -> "Scored":
        items = [c.item_id for c in self.inside.ranking]
        rank = items.index(self.query.truth) + 1 if self.query.truth in items else None
        return Scored(
            self.query.dataset,
            rank,
            self.inside.band.value,
            self.query.truth in self.inside.matched,
            self.outside.band.value,
        )


@dataclass(frozen=True)
class Scored:
    """What the report counts of one answered query (offline or through the mesh)."""

    dataset: str
    rank: int | None  # of the right item; None when not returned
    band: str  # "match", "possible", "no_match"
    candidate_hit: bool  # the right item was among what re-ranking saw
    outside_band: str  # the band when its item is not in the catalog


def cross_validate(
    queries: Sequence[QueryEvidence], k: int, seed: int = 0, grid: Grid = FULL
) -> tuple[list[Held], list[Params]]:
    """Every query answered with the parameters chosen (within `grid`) on the other folds."""
    fold_of = folds(queries, k, seed)
    held: list[Held] = []
    chosen = []
    for fold in range(k):
        train = [q for q in queries if fold_of[(q.dataset, q.truth)] != fold]
        params = choose(train, grid)
        chosen.append(params)
        held += [
            _held(q, fold_of, params) for q in queries if fold_of[(q.dataset, q.truth)] == fold
        ]
    return held, chosen


def in_sample(
    queries: Sequence[QueryEvidence], params: Params, fold_of: dict[tuple[str, str], int]
) -> list[Held]:
    return [_held(q, fold_of, params) for q in queries]


def _held(q: QueryEvidence, fold_of: dict[tuple[str, str], int], params: Params) -> Held:
    fold = fold_of[(q.dataset, q.truth)]
    gone = frozenset(i for (d, i), f in fold_of.items() if d == q.dataset and f == fold)
    return Held(q, fold, params, answer(q, params), answer(q, params, gone))


def summary(rows: Sequence[Scored]) -> dict[str, dict[str, float]]:
    """Per dataset: recall@1/5, MRR, candidate recall (the right item among what
    re-ranking saw), each band's share and precision on queries of catalog items, and
    what photos of items not in the catalog were told."""
    out = {}
    for dataset in sorted({r.dataset for r in rows}):
        mine = [r for r in rows if r.dataset == dataset]
        ranks = np.asarray([r.rank or 10**9 for r in mine])
        row = {
            "queries": float(len(mine)),
            "r1": float(np.mean(ranks == 1)),
            "r5": float(np.mean(ranks <= 5)),
            "mrr": float(np.mean([1.0 / r.rank if r.rank else 0.0 for r in mine])),
            "candidate_recall": float(np.mean([r.candidate_hit for r in mine])),
        }
        for band in Band:
            chosen = [r.rank == 1 for r in mine if r.band == band.value]
            row[f"{band.value}_share"] = len(chosen) / len(mine)
            row[f"{band.value}_precision"] = float(np.mean(chosen)) if chosen else math.nan
        row["outside_no_match"] = float(np.mean([r.outside_band == "no_match" for r in mine]))
        row["outside_match"] = float(np.mean([r.outside_band == "match" for r in mine]))
        out[dataset] = row
    return out
