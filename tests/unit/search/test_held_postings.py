"""Postings held in memory rank photos as the word query does (codebook.rank_photos is
the reference): best view per photo, ties by image id, unknown words ignored."""

import numpy as np
import pytest

from photosearch_search.codebook import Bag, rank_photos
from photosearch_search.held_postings import BYTES_PER_POSTING, WordPostings
from photosearch_search.region_store import AllPostings

WORDS = 50


def bag(rng: np.random.Generator, size: int) -> Bag:
    words = np.sort(rng.choice(WORDS, size, replace=False)).astype(np.int64)
    weights = rng.uniform(0.05, 1.0, size).astype(np.float32)
    return Bag(words, (weights / np.linalg.norm(weights)).astype(np.float32))


def held(photos: dict[str, Bag], items: dict[str, str]) -> WordPostings:
    """As region_store.all_postings reads them: photo numbers in image id order, the
    rows in no particular order."""
    ids = sorted(photos)
    word, photo, weight = [], [], []
    for number, image in enumerate(ids):
        word += photos[image].words.tolist()
        photo += [number] * len(photos[image].words)
        weight += photos[image].weights.tolist()
    shuffle = np.random.default_rng(1).permutation(len(word))
    found = AllPostings(
        [(i, items[i]) for i in ids],
        np.asarray(word, dtype=np.int32)[shuffle],
        np.asarray(photo, dtype=np.int32)[shuffle],
        np.asarray(weight, dtype=np.float32)[shuffle],
    )
    return WordPostings.build(3, 7, WORDS, found)


def test_the_ranking_is_the_word_query_s():
    rng = np.random.default_rng(0)
    photos = {f"img-{n:03d}": bag(rng, int(rng.integers(1, 15))) for n in range(200)}
    items = {image: f"item-{n % 60}" for n, image in enumerate(sorted(photos))}
    postings = held(photos, items)
    assert (postings.version, postings.changes) == (3, 7)
    assert len(postings.photo) == sum(len(b.words) for b in photos.values())
    assert postings.nbytes >= BYTES_PER_POSTING * len(postings.photo)
    for _ in range(20):
        views = [bag(rng, int(rng.integers(1, 20))) for _ in range(int(rng.integers(1, 4)))]
        want = rank_photos(views, photos, limit=15)
        got = postings.top(views, 15)
        assert [(image, items[image]) for image, _ in want] == [(i, m) for m, i, _ in got]
        for (_, score), (_, _, found) in zip(want, got, strict=True):
            assert found == pytest.approx(score, abs=1e-9)


def test_ties_go_by_image_id_and_unknown_words_are_ignored():
    same = Bag(np.array([4, 9], dtype=np.int64), np.array([0.6, 0.8], dtype=np.float32))
    photos = {"img-b": same, "img-a": same, "img-c": Bag(np.array([9]), np.array([1.0]))}
    postings = held(photos, {"img-a": "item-1", "img-b": "item-2", "img-c": "item-3"})
    query = Bag(np.array([4, 9, WORDS + 5], dtype=np.int64), np.array([0.6, 0.8, 0.9]))
    top = postings.top([query], 10)
    assert [image for _, image, _ in top] == ["img-a", "img-b", "img-c"]
    assert top[0][2] == pytest.approx(1.0, abs=1e-6)
    assert postings.top([query], 1) == top[:1]
    # Nothing shared, or no view at all: no photo.
    assert postings.top([Bag(np.array([30]), np.array([1.0]))], 10) == []
    assert postings.top([], 10) == []
