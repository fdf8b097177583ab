"""The allocator set-up search starts with: re-ranking in a worker thread reuses its
memory from one search to the next instead of faulting it in again."""

import resource
import statistics
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from photosearch.common.local import SALIENT_CELLS, LocalGrid
from photosearch_search.allocator import keep_freed_memory
from photosearch_search.matching import MatchSettings, match_pairs

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")


def salient_grid(seed: int) -> LocalGrid:
    rng = np.random.default_rng(seed)
    index = np.sort(rng.choice(28 * 28, SALIENT_CELLS, replace=False)).astype(np.int32)
    return LocalGrid(28, 28, index, rng.integers(-127, 128, (SALIENT_CELLS, 64), dtype=np.int8))


def sharing(view: LocalGrid, share: float, seed: int) -> LocalGrid:
    """A photo holding about `share` of the view's cells, shuffled over its grid: many
    matches, few of them consistent, as between a query and most candidates."""
    rng = np.random.default_rng(seed)
    codes = view.codes.copy()
    other = rng.random(len(codes)) > share
    codes[other] = rng.integers(-127, 128, (int(other.sum()), view.dim), dtype=np.int8)
    return LocalGrid(view.rows, view.cols, view.index, codes[rng.permutation(len(codes))])


def page_faults_of_one_search(view: LocalGrid, photos: list[LocalGrid]) -> int:
    """Minor page faults of the calling thread while it matches one query."""
    before = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
    match_pairs([view], photos, MatchSettings())
    return resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - before


def test_a_worker_thread_reuses_its_memory_between_searches():
    assert keep_freed_memory()
    rng = np.random.default_rng(1)
    searches = []
    for number in range(30):  # searches of varying sizes, as real queries are
        view = salient_grid(1000 + number)
        photos = [sharing(view, rng.uniform(0.05, 0.6), number * 100 + j) for j in range(20)]
        searches.append((view, photos))
    with ThreadPoolExecutor(1) as worker:
        faults = [worker.submit(page_faults_of_one_search, *s).result() for s in searches]
    # Untuned, each search faults its ~8 MB of temporaries in again: ~2,000 faults.
    # The first searches grow the arena to the working size.
    assert statistics.median(faults[10:]) < 100, faults
