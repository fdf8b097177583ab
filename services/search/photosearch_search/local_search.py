"""Searches that send the query photo's local descriptors: the nearest items' top
candidates (nearest.py) re-scored by verified local matches (rerank.py, which owns the
scoring), matched in worker threads so the event loop keeps serving other searches."""

import asyncio
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

from psycopg import AsyncConnection

from photosearch.common.errors import InvalidArgument
from photosearch.common.local import LocalGrid, from_proto
from photosearch.events.v1 import events_pb2
from photosearch_search.domain import SearchQuery, SearchResult
from photosearch_search.local_store import LocalDescriptorReader
from photosearch_search.nearest import NearestItems, VectorQueries
from photosearch_search.rerank import (
    Evidence,
    RerankSettings,
    StoredPhoto,
    check_view_count,
    query_views,
    rescore,
    staged_evidence,
    top_photos,
    wants_turned_views,
)
from photosearch_search.vectors import check_min_score


def parse_views(messages: Sequence[events_pb2.LocalDescriptors]) -> list[LocalGrid]:
    """The query's views, checked (count, grid, codes) and reduced to salient cells."""
    check_view_count(len(messages))  # before decoding any of them
    grids = [from_proto(m, what=f"local[{i}]") for i, m in enumerate(messages)]
    dims = {g.dim for g in grids}
    if len(dims) > 1:
        raise InvalidArgument(f"local: every view must have the same dim, got {sorted(dims)}")
    return query_views(grids)


class LocalSearch:
    def __init__(
        self,
        vectors: VectorQueries,
        nearest: NearestItems,
        reader: LocalDescriptorReader,
        settings: RerankSettings,
        threads: int,
    ) -> None:
        self._vectors = vectors
        self._nearest = nearest
        self._reader = reader
        self._settings = settings
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix="rerank")

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    def check_min_score(self, min_score: float) -> float:
        return check_min_score(min_score, upper=self._settings.max_score)

    async def search(self, query: SearchQuery, views: Sequence[LocalGrid]) -> SearchResult:
        """`views` as `parse_views` returns them; `query.min_score` applies to the final
        score. A model without any stored descriptors answers the global ranking
        (reranked=False)."""
        model = query.model
        wide = replace(query, k=max(query.k, self._settings.top_k), min_score=-1.0)

        async def work(
            conn: AsyncConnection[Any],
        ) -> tuple[SearchResult, dict[str, list[StoredPhoto]] | None]:
            dim = await self._reader.local_dim(conn, model)
            if dim == 0:
                return await self._nearest.find(conn, wide), None
            for number, view in enumerate(views):
                if view.dim != dim:
                    raise InvalidArgument(
                        f"local[{number}]: dim must be {dim} (the local descriptors of model "
                        f"{model.model_id!r}), got {view.dim}: compute them with the same model"
                    )
            found = await self._nearest.find(conn, wide)
            best = {c.item_id: c.image_id for c in found.candidates[: self._settings.top_k]}
            return found, await self._reader.photos(conn, model, best)

        found, photos = await self._vectors.run(work)
        candidates = found.candidates
        turned_wanted = False
        if photos is not None:
            top = top_photos(candidates, photos, self._settings)
            evidence = await self._evidence(views, top)
            candidates = rescore(candidates, evidence, self._settings)
            # Nothing to match (no candidate has descriptors yet): turns would not help.
            turned_wanted = bool(top) and wants_turned_views(views, evidence, self._settings)
        kept = [c for c in candidates if c.score >= query.min_score][: query.k]
        return SearchResult(
            found.model_id,
            kept,
            found.exact,
            reranked=photos is not None,
            turned_views_wanted=turned_wanted,
        )

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
