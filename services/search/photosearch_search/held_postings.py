"""The region index's postings held in memory, per model (its ready codebook version):
the word query answered with a few numpy gathers instead of one SQL join per search
(docs/benchmarks/search.md). Postgres stays the source of truth: a replica reads a
version's postings again once its change counter moves (migration 007), at most as
often as `LoadPace` allows, and serves its last copy of that version meanwhile (seconds
behind, as the index itself is behind new photos). Versions whose postings do not fit
`max_bytes` (all models together) are queried in SQL, as are filtered searches (the
filters live with the model's vectors)."""

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from psycopg_pool import AsyncConnectionPool

from photosearch.common.logging import get_logger
from photosearch_search import region_store
from photosearch_search.codebook import Bag

log = get_logger(__name__)
F64 = npt.NDArray[np.float64]
BYTES_PER_POSTING = 8  # its photo number (int32) and weight (float32)
PHOTO_BYTES = 120  # per photo: its two ids (Python strings) and their slots


@dataclass(frozen=True)
class WordPostings:
    """One version's postings, word after word: photo[starts[w]:starts[w + 1]] hold
    word w, with those weights. Photo numbers follow image id order."""

    version: int
    changes: int
    starts: npt.NDArray[np.int64]  # (words + 1,)
    photo: npt.NDArray[np.int32]
    weight: npt.NDArray[np.float32]
    photos: list[tuple[str, str]]  # (image id, item id)

    @classmethod
    def build(
        cls, version: int, changes: int, words: int, found: region_store.AllPostings
    ) -> "WordPostings":
        order = np.argsort(found.word, kind="stable")
        counts = np.bincount(found.word, minlength=words)
        starts = np.zeros(len(counts) + 1, dtype=np.int64)
        np.cumsum(counts, out=starts[1:])
        return cls(version, changes, starts, found.photo[order], found.weight[order], found.photos)

    @property
    def nbytes(self) -> int:
        arrays = self.starts.nbytes + self.photo.nbytes + self.weight.nbytes
        return arrays + PHOTO_BYTES * len(self.photos)

    def top(self, views: Sequence[Bag], limit: int) -> list[tuple[str, str, float]]:
        """What region_store.top_photos answers without filters: (item id, image id,
        score) of the photos sharing a word with any view, by their best view's summed
        weights, best first, ties by image id."""
        count = len(self.photos)
        best: F64 = np.zeros(count)
        touched = np.zeros(count, dtype=bool)
        for bag in views:
            known = bag.words < len(self.starts) - 1
            words, weights = bag.words[known], bag.weights[known].astype(np.float64)
            begin = self.starts[words]
            lengths = self.starts[words + 1] - begin
            total = int(lengths.sum())
            if total == 0:
                continue
            # Every posting of the view's words: each word's run, one after the other.
            runs = np.cumsum(lengths) - lengths
            at = np.arange(total) + np.repeat(begin - runs, lengths)
            photos = self.photo[at]
            shares = self.weight[at].astype(np.float64) * np.repeat(weights, lengths)
            np.maximum(best, np.bincount(photos, weights=shares, minlength=count), out=best)
            touched[photos] = True
        hits = np.flatnonzero(touched)
        ranked = hits[np.lexsort((hits, -best[hits]))][:limit]
        return [(self.photos[p][1], self.photos[p][0], float(best[p])) for p in ranked]


@dataclass(frozen=True)
class LoadPace:
    """A model's postings are read again no sooner than `min_gap` seconds, nor than
    `factor` times the last read took: at most 1/factor of a core while photos arrive."""

    min_gap: float = 1.0
    factor: float = 10.0


class HeldPostings:
    def __init__(
        self,
        pool: Callable[[], AsyncConnectionPool],
        max_bytes: int,
        pace: LoadPace | None = None,
    ) -> None:
        self._pool = pool
        self._max_bytes = max_bytes
        self._pace = pace or LoadPace()
        self._held: dict[str, WordPostings] = {}
        self._loading: dict[str, asyncio.Task[None]] = {}
        self._not_before: dict[str, float] = {}
        self._too_large: dict[str, tuple[int, int]] = {}  # model: (version, changes)

    @property
    def enabled(self) -> bool:
        return self._max_bytes > 0

    def bytes_held(self, model_id: str) -> int:
        held = self._held.get(model_id)
        return held.nbytes if held is not None else 0

    def get(self, model_id: str, version: int, changes: int, words: int) -> WordPostings | None:
        """The model's postings of this version, if held (possibly a few changes behind:
        a newer copy is being read); None: query them in SQL."""
        if not self.enabled:
            return None
        held = self._held.get(model_id)
        if held is None or (held.version, held.changes) != (version, changes):
            self._load_soon(model_id, version, changes, words)
        return held if held is not None and held.version == version else None

    def close(self) -> None:
        for task in self._loading.values():
            task.cancel()

    def _load_soon(self, model_id: str, version: int, changes: int, words: int) -> None:
        if model_id in self._loading or self._too_large.get(model_id) == (version, changes):
            return
        if time.monotonic() < self._not_before.get(model_id, 0.0):
            return
        task = asyncio.create_task(self._load(model_id, version, changes, words))
        self._loading[model_id] = task
        task.add_done_callback(lambda _: self._loading.pop(model_id, None))

    async def _load(self, model_id: str, version: int, changes: int, words: int) -> None:
        started = time.monotonic()
        others = sum(p.nbytes for m, p in self._held.items() if m != model_id)
        max_postings = max(self._max_bytes - others, 0) // BYTES_PER_POSTING
        try:
            async with self._pool().connection() as conn:
                found = await region_store.all_postings(conn, model_id, version, max_postings)
            if isinstance(found, int):
                self._not_held(model_id, version, changes, f"more than {max_postings} postings")
                return
            loop = asyncio.get_running_loop()
            held = await loop.run_in_executor(
                None, WordPostings.build, version, changes, words, found
            )
            if held.nbytes + others > self._max_bytes:
                self._not_held(model_id, version, changes, f"{held.nbytes} bytes")
                return
            self._held[model_id] = held
            self._too_large.pop(model_id, None)
            log.info(
                "regions.postings_held",
                model_id=model_id,
                version=version,
                photos=len(held.photos),
                postings=len(held.photo),
                mib=round(held.nbytes / 2**20, 2),
                seconds=round(time.monotonic() - started, 3),
            )
        except Exception as exc:  # e.g. Postgres away: SQL meanwhile, the next search retries
            log.warning("regions.postings_read_failed", model_id=model_id, error=str(exc))
        finally:
            took = time.monotonic() - started
            self._not_before[model_id] = time.monotonic() + max(
                self._pace.min_gap, self._pace.factor * took
            )

    def _not_held(self, model_id: str, version: int, changes: int, size: str) -> None:
        if self._too_large.get(model_id, (None, None))[0] != version:  # once per version
            log.info(
                "regions.postings_not_held",
                model_id=model_id,
                version=version,
                size=size,
                max_mib=round(self._max_bytes / 2**20, 2),
            )
        self._too_large[model_id] = (version, changes)
        self._held.pop(model_id, None)  # a copy that falls behind is never served
