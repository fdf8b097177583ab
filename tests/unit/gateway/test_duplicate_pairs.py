"""Merging the two duplicate signals: one entry per image pair whichever way round each
service names it, copies first (closest first), then fingerprint pairs by similarity."""

import pytest

from photosearch.catalog.v1 import catalog_pb2 as cpb
from photosearch.search.v1 import search_pb2 as spb
from photosearch_gateway.duplicate_pairs import merge


def fingerprint(a: str, b: str, score: float) -> spb.DuplicatePair:
    return spb.DuplicatePair(
        item_id_a="i" + a, image_id_a=a, item_id_b="i" + b, image_id_b=b, score=score
    )


def copy(a: str, b: str, distance: int) -> cpb.CopyPair:
    return cpb.CopyPair(
        item_id_a="i" + a, image_id_a=a, item_id_b="i" + b, image_id_b=b, distance=distance
    )


def test_one_entry_per_pair_copies_first_then_by_similarity() -> None:
    merged = merge(
        [fingerprint("x", "y", 0.99), fingerprint("b", "a", 0.8), fingerprint("p", "q", 0.9)],
        [copy("a", "b", 20), copy("c", "d", 3)],
        limit=10,
    )
    assert [(m.image_id_a, m.image_id_b, m.signals) for m in merged] == [
        ("c", "d", ["copy_hash"]),
        ("a", "b", ["fingerprint", "copy_hash"]),
        ("x", "y", ["fingerprint"]),
        ("p", "q", ["fingerprint"]),
    ]
    assert merged[1].score == pytest.approx(0.8) and merged[1].copy is not None
    assert len(merge([fingerprint("x", "y", 0.99)], [copy("c", "d", 3)], limit=1)) == 1


def test_pixel_matches_follow_the_hash_matches_most_similar_first() -> None:
    def pixels(a: str, b: str, similarity: float) -> cpb.CopyPair:
        pair = copy(a, b, 120)
        pair.found_by, pair.similarity = "pixels", similarity
        return pair

    merged = merge(
        [fingerprint("f", "e", 0.99), fingerprint("x", "y", 0.95)],
        [pixels("g", "h", 0.93), pixels("e", "f", 0.98), copy("a", "b", 30)],
        limit=10,
    )
    assert [(m.image_id_a, m.signals) for m in merged] == [
        ("a", ["copy_hash"]),
        ("e", ["fingerprint", "copy_pixels"]),
        ("g", ["copy_pixels"]),
        ("x", ["fingerprint"]),
    ]
