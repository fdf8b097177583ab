"""Query checks and the grouping of image hits into ranked items."""

import math

import numpy as np
import pytest

from photosearch.common.errors import InvalidArgument
from photosearch.events.v1 import events_pb2
from photosearch_search.domain import ImageHit, Model
from photosearch_search.indexer import check_completed
from photosearch_search.vectors import (
    best_per_item,
    check_k,
    check_min_score,
    make_filters,
    query_vector,
)

MODEL = Model("m", 4, 1)


def test_query_vector_is_normalised() -> None:
    v = query_vector([3.0, 0.0, 4.0, 0.0], MODEL)
    assert v.dtype == np.float32
    assert np.allclose(v, [0.6, 0.0, 0.8, 0.0])


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ([1.0, 2.0, 3.0], "has 3 values but model 'm' makes 4-d"),
        ([1.0, math.nan, 0.0, 0.0], "NaN or infinite"),
        ([1.0, math.inf, 0.0, 0.0], "NaN or infinite"),
        ([0.0, 0.0, 0.0, 0.0], "all zeros"),
        ([], "has 0 values"),
    ],
)
def test_query_vector_rejects_what_cannot_be_compared(values: list[float], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        query_vector(values, MODEL)


def test_tiny_but_nonzero_vectors_are_fine() -> None:
    v = query_vector([1e-30, 0.0, 0.0, 0.0], MODEL)
    assert np.allclose(v, [1.0, 0.0, 0.0, 0.0])


def test_k_defaults_to_ten_and_is_bounded() -> None:
    assert check_k(0, 100) == 10
    assert check_k(0, 5) == 5
    assert check_k(100, 100) == 100
    for bad in (-1, 101):
        with pytest.raises(InvalidArgument, match="k must be between 1 and 100"):
            check_k(bad, 100)


def test_min_score_zero_means_none_and_must_be_a_cosine() -> None:
    assert check_min_score(0.0) == -1.0
    assert check_min_score(0.5) == 0.5
    for bad in (1.5, -2.0, math.nan):
        with pytest.raises(InvalidArgument, match="min_score"):
            check_min_score(bad)


def test_filters_compare_trimmed_lower_case_values() -> None:
    filters = make_filters([" Star Wars ", "", "star wars"], ["LEGO"], ["Red", "  "])
    assert filters.series == ("star wars",)
    assert filters.makers == ("lego",)
    assert filters.tags == ("red",)
    assert filters
    assert not make_filters([], [" "], [])


def test_each_item_once_scored_by_its_best_image() -> None:
    hits = [
        ImageHit("b", "b1", 0.30),
        ImageHit("a", "a1", 0.50),
        ImageHit("a", "a2", 0.10),  # out of order, as relaxed index scans return them
        ImageHit("c", "c1", 0.90),
    ]
    ranked = best_per_item(hits, k=10, min_score=-1.0)
    assert [(c.item_id, c.image_id) for c in ranked] == [("a", "a2"), ("b", "b1"), ("c", "c1")]
    assert [c.score for c in ranked] == pytest.approx([0.9, 0.7, 0.1])
    assert [c.item_id for c in best_per_item(hits, k=2, min_score=-1.0)] == ["a", "b"]
    assert [c.item_id for c in best_per_item(hits, k=10, min_score=0.5)] == ["a", "b"]


def test_ties_are_broken_by_item_id_for_stable_pages() -> None:
    hits = [ImageHit("z", "z1", 0.2), ImageHit("y", "y1", 0.2)]
    assert [c.item_id for c in best_per_item(hits, 10, -1.0)] == ["y", "z"]


def _completed(*embeddings: tuple[str, list[float]]) -> events_pb2.EmbedCompleted:
    return events_pb2.EmbedCompleted(
        image_id="i",
        item_id="t",
        model_id="m",
        embeddings=[events_pb2.Embedding(variant=v, values=vals) for v, vals in embeddings],
    )


def test_completed_vectors_are_normalised_per_variant() -> None:
    result = check_completed(_completed(("global", [0.0, 2.0]), ("mirror", [2.0, 0.0])))
    assert result.problem == ""
    assert [(e.variant, e.values.tolist()) for e in result.embeddings] == [
        ("global", [0.0, 1.0]),
        ("mirror", [1.0, 0.0]),
    ]


@pytest.mark.parametrize(
    ("embeddings", "problem"),
    [
        ((), "sent no vector"),
        ((("global", [1.0, 0.0]), ("mirror", [1.0, 0.0, 0.0])), "has 3 values"),
        ((("global", [math.nan, 1.0]),), "NaN"),
        ((("global", [0.0, 0.0]),), "all zeros"),
    ],
)
def test_unusable_completed_vectors_become_failures(
    embeddings: tuple[tuple[str, list[float]], ...], problem: str
) -> None:
    result = check_completed(_completed(*embeddings))
    assert problem in result.problem
    assert result.embeddings == []
