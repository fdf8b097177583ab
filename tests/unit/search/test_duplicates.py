"""The duplicate and confusable report computed exactly, checked against brute force."""

import itertools

import numpy as np
import pytest

from photosearch_search import duplicates
from photosearch_search.duplicates import Fingerprints, exact_report


def _prints(item_ids: list[str], matrix: np.ndarray) -> Fingerprints:
    matrix = matrix / np.linalg.norm(matrix, axis=1, keepdims=True)
    return Fingerprints(
        [f"img-{i}" for i in range(len(item_ids))], item_ids, matrix.astype(np.float32)
    )


def test_pairs_of_different_items_above_threshold_match_brute_force(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(duplicates, "BLOCK_ROWS", 7)  # several blocks, a ragged last one
    rng = np.random.default_rng(3)
    centres = rng.normal(size=(10, 24))
    rows = np.repeat(centres, 5, axis=0) + 0.3 * rng.normal(size=(50, 24))
    items = [f"item-{i % 17}" for i in range(50)]
    prints = _prints(items, rows)
    threshold = 0.8
    found, _ = exact_report(prints, threshold, limit=10_000)

    sims = prints.matrix @ prints.matrix.T
    expected = sorted(
        (-float(sims[a, b]), a, b)
        for a, b in itertools.combinations(range(50), 2)
        if items[a] != items[b] and sims[a, b] >= threshold
    )
    assert expected, "the data should contain look-alikes"
    assert [(p.image_id_a, p.image_id_b) for p in found] == [
        (f"img-{a}", f"img-{b}") for _, a, b in expected
    ]
    assert [p.score for p in found] == pytest.approx([-s for s, _, _ in expected], abs=1e-5)
    limited, _ = exact_report(prints, threshold, limit=3)
    assert limited == found[:3]


def test_nearest_other_item_across_blocks_matches_brute_force(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(duplicates, "BLOCK_ROWS", 5)
    rng = np.random.default_rng(11)
    items = [f"item-{i % 9}" for i in range(37)]
    prints = _prints(items, rng.normal(size=(37, 12)))
    _, confusables = exact_report(prints, 0.99, limit=100)

    sims = prints.matrix @ prints.matrix.T
    expected = {}
    for item in set(items):
        mine = [i for i, it in enumerate(items) if it == item]
        others = [j for j, it in enumerate(items) if it != item]
        a, b = max(((a, b) for a in mine for b in others), key=lambda p: sims[p])
        expected[item] = (items[b], float(sims[a, b]))
    assert {c.item_id: (c.nearest_item_id, c.nearest_score) for c in confusables} == {
        item: (other, pytest.approx(score, abs=1e-5)) for item, (other, score) in expected.items()
    }


def test_confusables_give_nearest_other_item_own_spread_and_margin() -> None:
    matrix = np.array(
        [
            [1.0, 0.0, 0.0],  # a
            [0.9, 0.1, 0.0],  # a
            [0.8, 0.3, 0.0],  # b: close to a
            [0.0, 0.0, 1.0],  # c: alone
        ]
    )
    prints = _prints(["a", "a", "b", "c"], matrix)
    sims = prints.matrix @ prints.matrix.T
    _, confusables = exact_report(prints, 0.99, limit=10)
    by_item = {c.item_id: c for c in confusables}
    assert by_item["a"].nearest_item_id == "b"
    assert by_item["a"].nearest_score == pytest.approx(max(sims[0, 2], sims[1, 2]))
    assert by_item["a"].own_score == pytest.approx(sims[0, 1])
    assert by_item["b"].own_score == 1.0  # one image
    assert by_item["c"].nearest_score == pytest.approx(max(sims[3, :3]), abs=1e-6)
    assert [c.item_id for c in confusables] == sorted(by_item, key=lambda i: by_item[i].margin)
    assert confusables[0].item_id == "a"  # its own images spread wider than a-to-b


def test_empty_and_single_item_catalogs() -> None:
    assert exact_report(_prints([], np.zeros((0, 3))), 0.9, 10) == ([], [])
    pairs, confusables = exact_report(_prints(["a", "a"], np.eye(2, 3) + 0.1), 0.0, 10)
    assert pairs == []  # same item: never a duplicate of itself
    assert confusables == []
