"""The Search use case. The query is checked here, in one place (model, vector, k,
filters, min_score, local views; only the views' dimension against the model's stored
descriptors is checked later, on the search's connection, by local_search.py). The
nearest items answer it (nearest.py), re-ranked by local matches when the query sends
its own local descriptors (local_search.py), each with what a page shows of its item
(summaries.py). The admin's use cases: index_admin.py."""

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from photosearch.common.clock import elapsed_ms
from photosearch.events.v1 import events_pb2
from photosearch_search.bands import BandSettings, band_of
from photosearch_search.domain import SearchLimits, SearchQuery, SearchResult
from photosearch_search.local_search import LocalSearch, parse_views
from photosearch_search.metrics import SearchMetrics
from photosearch_search.models import ModelRegistry
from photosearch_search.nearest import NearestItems
from photosearch_search.summaries import SummaryReader
from photosearch_search.vectors import check_k, check_min_score, make_filters, query_vector


@dataclass(frozen=True)
class SearchService:
    registry: ModelRegistry
    nearest: NearestItems
    local_search: LocalSearch
    limits: SearchLimits
    bands: BandSettings
    summaries: SummaryReader
    metrics: SearchMetrics = field(default_factory=SearchMetrics)

    async def search(
        self,
        model_id: str,
        values: Sequence[float],
        k: int,
        min_score: float,
        *,
        series: Iterable[str] = (),
        makers: Iterable[str] = (),
        tags: Iterable[str] = (),
        local: Sequence[events_pb2.LocalDescriptors] = (),
    ) -> SearchResult:
        """With `local` (the query photo's local descriptors: as taken, then turned
        views) the top candidates are re-ranked by verified local matches."""
        started = time.perf_counter()
        result = await self._search(model_id, values, k, min_score, series, makers, tags, local)
        named_at = time.perf_counter()
        candidates = await self.summaries.attach(result.candidates)
        timings = (*result.timings, ("names", elapsed_ms(named_at)))
        result = replace(result, candidates=candidates, timings=timings)
        self.metrics.searched(result, time.perf_counter() - started)
        return result

    async def _search(
        self,
        model_id: str,
        values: Sequence[float],
        k: int,
        min_score: float,
        series: Iterable[str],
        makers: Iterable[str],
        tags: Iterable[str],
        local: Sequence[events_pb2.LocalDescriptors],
    ) -> SearchResult:
        model = await self.registry.resolve(model_id)
        query = SearchQuery(
            model,
            query_vector(values, model),
            check_k(k, self.limits.max_k),
            make_filters(series, makers, tags),
            self.local_search.check_min_score(min_score) if local else check_min_score(min_score),
        )
        if local:
            return await self.local_search.search(query, parse_views(local))
        # Two at least, so that the band can see the top candidate's lead.
        started = time.perf_counter()
        found = await self.nearest.search(replace(query, k=max(query.k, 2), min_score=-1.0))
        kept = [c for c in found.candidates if c.score >= query.min_score][: query.k]
        band = band_of(found.candidates, self.bands)
        timings = (("candidates", elapsed_ms(started)),)
        return replace(found, candidates=kept, band=band, timings=timings)
