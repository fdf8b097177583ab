"""Visual words: the codebook's size rule, training that depends only on the photos,
and the bag similarity that the region index's SQL sums."""

import numpy as np
import pytest

from photosearch.common.local import LocalGrid, quantise
from photosearch_search.codebook import CodebookRule, bag_of, rank_photos, similarity, train

DIM = 16


def grid(seed: int, cells: int = 60, base: np.ndarray | None = None) -> LocalGrid:
    rng = np.random.default_rng(seed)
    unit = rng.normal(size=(cells, DIM)).astype(np.float32)
    if base is not None:  # the same object: the same cells, a little noise
        unit = base + 0.05 * unit
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    return LocalGrid(10, 10, np.arange(cells, dtype=np.int32), quantise(unit))


def test_the_size_follows_the_cells_within_bounds():
    rule = CodebookRule(cells_per_word=3.0, min_words=64, max_words=8192)
    assert rule.words_for(12_500) == 4096
    assert rule.words_for(2_250) == 512
    assert rule.words_for(100) == 64  # the floor
    assert rule.words_for(40) == 40  # never more words than cells
    assert rule.words_for(10_000_000) == 8192


def test_training_depends_on_the_photos_not_their_order():
    photos = [grid(seed) for seed in range(12)]
    rule = CodebookRule(min_words=16, max_words=64)
    one = train(photos, rule, version=1)
    other = train(list(reversed(photos)), rule, version=1)
    assert one.words == 64 and one.dim == DIM
    np.testing.assert_array_equal(one.centroids, other.centroids)
    np.testing.assert_array_equal(one.idf, other.idf)
    assert np.allclose(np.linalg.norm(one.centroids, axis=1), 1.0, atol=1e-5)
    assert one.photos == 12


def test_a_photo_of_the_same_object_shares_the_most_weight():
    rng = np.random.default_rng(0)
    objects = [rng.normal(size=(60, DIM)).astype(np.float32) for _ in range(10)]
    catalog = {f"photo-{i}": grid(100 + i, base=o) for i, o in enumerate(objects)}
    book = train(list(catalog.values()), CodebookRule(min_words=16, max_words=128), 1)
    bags = {key: bag_of(book, g) for key, g in catalog.items()}
    for bag in bags.values():  # a bag is unit length
        assert similarity(bag, bag) == pytest.approx(1.0, abs=1e-5)
    query = bag_of(book, grid(999, base=objects[3]))
    ranked = rank_photos([query], bags, limit=3)
    assert ranked[0][0] == "photo-3"
    assert ranked[0][1] > ranked[1][1] and len(ranked) <= 3
    # A second view counts with its best photo.
    unrelated = bag_of(book, grid(5000))
    assert rank_photos([unrelated, query], bags, 1)[0][0] == "photo-3"
