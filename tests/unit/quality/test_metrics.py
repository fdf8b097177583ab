import math

import pytest

from tools.quality.metrics import (
    Ranking,
    by_view,
    rank_items,
    recall_curve,
    suggest_threshold,
    summarise,
)


def ranking(truth: str, scores: dict[str, float], view: str = "v") -> Ranking:
    return rank_items(f"q-{truth}-{view}", view, truth, scores)


def test_rank_items_orders_by_score_then_item_id():
    r = ranking("b", {"a": 0.5, "b": 0.9, "c": 0.5})
    assert r.items == ("b", "a", "c")
    assert r.rank == 1
    assert r.correct_score == pytest.approx(0.9)
    assert r.best_wrong_score == pytest.approx(0.5)
    assert r.margin == pytest.approx(0.4)


def test_wrong_top_gives_negative_margin_and_rank_two():
    r = ranking("a", {"a": 0.6, "b": 0.8})
    assert r.rank == 2
    assert r.margin == pytest.approx(-0.2)


def test_missing_truth_has_no_rank_and_no_margin():
    r = rank_items("q", "v", "z", {"a": 0.9, "b": 0.1}, k=2)
    assert r.rank is None
    assert r.correct_score is None
    assert r.margin is None


def test_summary_recall_and_mrr():
    rows = [
        ranking("a", {"a": 0.9, "b": 0.1, "c": 0.0}),  # rank 1
        ranking("a", {"a": 0.5, "b": 0.6, "c": 0.0}),  # rank 2
        ranking("a", {"a": 0.1, "b": 0.6, "c": 0.5}),  # rank 3
        ranking("a", {"b": 0.6, "c": 0.5}),  # not returned
    ]
    s = summarise(rows, recall_at=(1, 2, 5))
    assert s.queries == 4
    assert s.recall == {1: 0.25, 2: 0.5, 5: 0.75}
    assert s.mrr == pytest.approx((1 + 1 / 2 + 1 / 3) / 4)
    assert s.right_scores == [0.9, 0.5, 0.1]
    assert s.wrong_scores == [0.1, 0.6, 0.6, 0.6]


def test_threshold_separates_clean_distributions():
    t = suggest_threshold([0.8, 0.85, 0.9], [0.3, 0.4, 0.5])
    assert t is not None and 0.5 < t < 0.8


def test_threshold_is_none_without_both_sides():
    assert suggest_threshold([], [0.1]) is None
    assert suggest_threshold([0.9], []) is None


def test_precision_at_threshold_counts_only_accepted_top_matches():
    rows = [ranking("a", {"a": 0.9, "b": 0.2}), ranking("a", {"a": 0.3, "b": 0.4})]
    s = summarise(rows)
    assert s.threshold is not None
    assert s.precision_at_threshold == 1.0
    assert s.accepted_right == 0.5


def test_empty_summary_is_nan_not_an_error():
    s = summarise([])
    assert s.queries == 0
    assert math.isnan(s.recall[1])


def test_by_view_and_recall_curve():
    rows = [ranking("a", {"a": 1.0, "b": 0.0}, "x"), ranking("a", {"a": 0.0, "b": 1.0}, "y")]
    assert list(by_view(rows)) == ["x", "y"]
    assert recall_curve(rows, 2) == [0.5, 1.0]
