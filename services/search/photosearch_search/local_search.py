"""Searches that send the query photo's local descriptors. The candidates are the
fingerprint's nearest items (nearest.py) and the items whose photos share the most
visual words with the query (region_index.py); their stored descriptors are matched
with the query's in worker threads, so the event loop keeps serving other searches, and
re-scored by verified local matches (rerank.py, which owns the scoring). The answer
gets its band (bands.py)."""

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from psycopg import AsyncConnection

from photosearch.common.clock import elapsed_ms
from photosearch.common.errors import InvalidArgument
from photosearch.common.local import LocalGrid, from_proto
from photosearch.events.v1 import events_pb2
from photosearch_search.bands import BandSettings, band_of, mark_verified
from photosearch_search.domain import Candidate, SearchQuery, SearchResult
from photosearch_search.local_store import LocalDescriptorReader
from photosearch_search.nearest import NearestItems, VectorQueries
from photosearch_search.region_index import RegionIndex
from photosearch_search.rerank import (
    Evidence,
    RerankSettings,
    StoredPhoto,
    check_view_count,
    matched_photos,
    query_views,
    rescore,
    staged_evidence,
    wants_turned_views,
)
from photosearch_search.vectors import best_per_item, check_min_score

T = TypeVar("T")


def parse_views(messages: Sequence[events_pb2.LocalDescriptors]) -> list[LocalGrid]:
    """The query's views, checked (count, grid, codes) and reduced to salient cells."""
    check_view_count(len(messages))  # before decoding any of them
    grids = [from_proto(m, what=f"local[{i}]") for i, m in enumerate(messages)]
    dims = {g.dim for g in grids}
    if len(dims) > 1:
        raise InvalidArgument(f"local: every view must have the same dim, got {sorted(dims)}")
    return query_views(grids)


@dataclass(frozen=True)
class Found:
    """What one connection gathered: the fingerprint's nearest items, the region
    index's extra items, and the stored photos of every candidate to match (None: the
    model has no descriptors yet)."""

    nearest: SearchResult
    matched: list[Candidate]
    photos: dict[str, list[StoredPhoto]] | None
    # Parts of the candidate lookup, each (stage, ms): the region index (and its two
    # steps, the views' words and the word query), the stored descriptors' read.
    parts: tuple[tuple[str, float], ...] = ()


class LocalSearch:
    def __init__(
        self,
        vectors: VectorQueries,
        nearest: NearestItems,
        reader: LocalDescriptorReader,
        regions: RegionIndex,
        settings: RerankSettings,
        bands: BandSettings,
        threads: int,
    ) -> None:
        self._vectors = vectors
        self._nearest = nearest
        self._reader = reader
        self._regions = regions
        self._settings = settings
        self._bands = bands
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix="rerank")

    def close(self) -> None:
        self._regions.close()
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _off_loop(self, work: Callable[[], T]) -> Awaitable[T]:
        return asyncio.get_running_loop().run_in_executor(self._executor, work)

    def check_min_score(self, min_score: float) -> float:
        return check_min_score(min_score, upper=self._settings.max_score)

    async def search(self, query: SearchQuery, views: Sequence[LocalGrid]) -> SearchResult:
        """`views` as `parse_views` returns them; `query.min_score` applies to the final
        score. A model without any stored descriptors answers the global ranking
        (reranked=False)."""
        # Two at least, so that the band can see the top candidate's lead.
        wide = replace(query, k=max(query.k, self._settings.top_k, 2), min_score=-1.0)
        started = time.perf_counter()
        found = await self._vectors.run(lambda conn: self._gather(conn, wide, views))
        timings = [("candidates", elapsed_ms(started)), *found.parts]
        candidates = found.nearest.candidates
        turned_wanted = False
        compared = 0
        if found.photos is not None:
            started = time.perf_counter()
            wanted = matched_photos(found.matched, found.photos)
            evidence = await self._evidence(views, wanted)
            compared = len(wanted)
            # The region index's items: added, or marked where the fingerprint's wider list
            # has them too (below the part that is matched).
            regions = {c.item_id: c for c in found.matched if c.from_regions}
            known = {c.item_id for c in candidates}
            merged = [regions.get(c.item_id, c) for c in candidates]
            merged += [c for item, c in regions.items() if item not in known]
            candidates = rescore(merged, evidence, self._settings)
            # Nothing to match (no candidate has descriptors yet): turns would not help.
            turned_wanted = bool(wanted) and wants_turned_views(views, evidence, self._settings)
            timings.append(("rerank", elapsed_ms(started)))
        candidates = mark_verified(candidates, self._bands)
        band = band_of(candidates, self._bands)
        kept = [c for c in candidates if c.score >= query.min_score][: query.k]
        return SearchResult(
            found.nearest.model_id,
            kept,
            found.nearest.exact,
            reranked=found.photos is not None,
            turned_views_wanted=turned_wanted,
            band=band,
            region_candidates=sum(c.from_regions for c in found.matched),
            compared=compared,
            timings=tuple(timings),
        )

    async def _gather(
        self, conn: AsyncConnection[Any], query: SearchQuery, views: Sequence[LocalGrid]
    ) -> Found:
        model = query.model
        dim = await self._reader.local_dim(conn, model)
        nearest = await self._nearest.find(conn, query)
        if dim == 0:
            return Found(nearest, [], None)
        for number, view in enumerate(views):
            if view.dim != dim:
                raise InvalidArgument(
                    f"local[{number}]: dim must be {dim} (the local descriptors of model "
                    f"{model.model_id!r}), got {view.dim}: compute them with the same model"
                )
        top = nearest.candidates[: self._settings.top_k]
        started = time.perf_counter()
        added, steps = await self._region_candidates(conn, query, views, top)
        matched = [*top, *added]
        parts = [("region_index", elapsed_ms(started)), *steps] if self._regions.enabled else []
        started = time.perf_counter()
        photos = await self._reader.photos(conn, model, {c.item_id: c.image_id for c in matched})
        parts.append(("descriptors", elapsed_ms(started)))
        return Found(nearest, matched, photos, tuple(parts))

    async def _region_candidates(
        self,
        conn: AsyncConnection[Any],
        query: SearchQuery,
        views: Sequence[LocalGrid],
        top: Sequence[Candidate],
    ) -> tuple[list[Candidate], tuple[tuple[str, float], ...]]:
        """The region index's best items that are not among `top`, scored by their
        fingerprint like any candidate (and kept only where they pass the filters);
        with the index's step timings."""
        if not self._regions.enabled:
            return [], ()
        known = {c.item_id for c in top}
        lookup = await self._regions.items(
            conn,
            query.model,
            views,
            query.filters,
            self._off_loop,
            self._regions.limit + len(known),
        )
        new = [h.item_id for h in lookup.hits if h.item_id not in known][: self._regions.limit]
        if not new:
            return [], lookup.timings
        scored = await self._vectors.best_of_items(
            conn, query.model, query.vector, query.filters, new
        )
        added = [replace(c, from_regions=True) for c in best_per_item(scored, len(new), -1.0)]
        return added, lookup.timings

    async def _evidence(
        self, views: Sequence[LocalGrid], photos: dict[str, Sequence[StoredPhoto]]
    ) -> dict[str, Evidence]:
        """Matched in a worker thread, one per search: splitting a search's candidates
        between threads did not make it faster on 2 busy cores, and made concurrent
        searches' p99 worse (docs/benchmarks/search.md)."""
        if not views or not photos:
            return {}
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._executor, staged_evidence, views, photos, self._settings
        )
