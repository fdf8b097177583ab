"""The cross-validation's folds and grids, and the global-candidate techniques."""

from dataclasses import dataclass

import numpy as np

from tools.quality.global_sweep import Catalog, Query, Technique, item_scores
from tools.quality.tuning import Grid, folds


@dataclass(frozen=True)
class Labelled:
    dataset: str
    truth: str


def test_folds_deal_each_dataset_s_items_and_keep_every_query_of_an_item_together():
    queries = [Labelled(d, f"item{i}") for d in ("a", "b") for i in range(10) for _ in range(3)]
    fold_of = folds(queries, 2, seed=0)
    assert set(fold_of) == {(q.dataset, q.truth) for q in queries}
    for dataset in ("a", "b"):
        per_fold = [
            sum(1 for (d, _), f in fold_of.items() if d == dataset and f == k) for k in (0, 1)
        ]
        assert per_fold == [5, 5]
    assert folds(queries, 2, seed=0) == fold_of
    assert folds(queries, 2, seed=1) != fold_of


def test_an_ablation_grid_fixes_one_tunable_and_keeps_the_others_free():
    full, fixed = Grid(), Grid(regions=(0,))
    assert {p.regions for p in fixed.candidates()} == {0}
    assert len(fixed.candidates()) * len(full.regions) == len(full.candidates())
    assert {p.rerank.weight for p in fixed.candidates()} == set(full.weights)


def _unit(*values: float) -> np.ndarray:
    v = np.asarray(values, dtype=np.float32)
    return v / np.linalg.norm(v)


def test_extra_catalog_vectors_score_an_item_by_its_best_one():
    catalog = Catalog(
        {
            "global": np.stack([_unit(1, 0), _unit(0, 1)]),
            "crop:0.8": np.stack([_unit(1, 1), _unit(-1, 1)]),
        },
        ["x", "y"],
    )
    query = Query("d", "k", "x", {"global": _unit(1, 1)})
    plain = item_scores(query, catalog, Technique("fingerprint"))
    crops = item_scores(query, catalog, Technique("crops", index_crops=("crop:0.8",)))
    assert plain["x"] == plain["y"]
    assert crops["x"] > crops["y"] and crops["x"] > plain["x"]


def test_query_expansion_pulls_the_query_towards_its_nearest_catalog_vector():
    catalog = Catalog({"global": np.stack([_unit(1, 0), _unit(0, 1)])}, ["x", "y"])
    query = Query("d", "k", "y", {"global": _unit(1, 0.9)})
    plain = item_scores(query, catalog, Technique("fingerprint"))
    expanded = item_scores(query, catalog, Technique("qe", expand=1, alpha=0.0))
    assert plain["x"] - plain["y"] < expanded["x"] - expanded["y"]
