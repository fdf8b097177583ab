"""Protobuf <-> domain translation for the search service."""

from typing import Any

import grpc

from photosearch.search.v1 import search_pb2, search_pb2_grpc
from photosearch_search.domain import Band, ItemSummary
from photosearch_search.index_admin import IndexAdmin
from photosearch_search.service import SearchService

Context = grpc.aio.ServicerContext[Any, Any]
BANDS = {
    Band.MATCH: search_pb2.MATCH_BAND_MATCH,
    Band.POSSIBLE: search_pb2.MATCH_BAND_POSSIBLE,
    Band.NO_MATCH: search_pb2.MATCH_BAND_NO_MATCH,
}


def summary_to_proto(summary: ItemSummary | None) -> search_pb2.ItemSummary | None:
    if summary is None:
        return None  # the field stays unset: the caller asks catalog
    return search_pb2.ItemSummary(
        name=summary.name,
        series=summary.series,
        maker=summary.maker,
        year=summary.year,
        variant=summary.variant,
    )


class SearchServicer(search_pb2_grpc.SearchServiceServicer):
    def __init__(self, search: SearchService, admin: IndexAdmin) -> None:
        self._search = search
        self._admin = admin

    async def Search(
        self, request: search_pb2.SearchRequest, context: Context
    ) -> search_pb2.SearchResponse:
        # request.extra (extra query descriptors) is reserved for re-ranking.
        result = await self._search.search(
            request.model_id,
            request.vector,
            request.k,
            request.min_score,
            series=request.filters.series,
            makers=request.filters.makers,
            tags=request.filters.tags,
            local=request.local,
        )
        return search_pb2.SearchResponse(
            model_id=result.model_id,
            exact=result.exact,
            reranked=result.reranked,
            turned_views_wanted=result.turned_views_wanted,
            band=BANDS[result.band],
            region_candidates=result.region_candidates,
            timings=[
                search_pb2.StageTiming(stage=stage, milliseconds=ms) for stage, ms in result.timings
            ],
            candidates=[
                search_pb2.Candidate(
                    item_id=c.item_id,
                    image_id=c.image_id,
                    score=c.score,
                    global_score=c.score if c.global_score is None else c.global_score,
                    inliers=c.inliers,
                    verification=c.verification,
                    verified=c.verified,
                    from_regions=c.from_regions,
                    item=summary_to_proto(c.item),
                )
                for c in result.candidates
            ],
        )

    async def IndexStatus(
        self, request: search_pb2.IndexStatusRequest, context: Context
    ) -> search_pb2.IndexStatusResponse:
        status = await self._admin.index_status(request.model_id)
        return search_pb2.IndexStatusResponse(
            model_id=status.model_id,
            active_model_id=status.active_model_id,
            dim=status.dim,
            catalog_images=status.catalog_images,
            embedded=status.embedded,
            pending=status.pending,
            failed=status.failed,
            failures=[
                search_pb2.Failure(image_id=f.image_id, item_id=f.item_id, reason=f.reason)
                for f in status.failures
            ],
            workers=status.workers,
            queue_depth=status.queue_depth,
            rebuild_in_progress=status.rebuild_in_progress,
            region_indexed=status.region_indexed,
            region_words=status.region_words,
        )

    async def Rebuild(
        self, request: search_pb2.RebuildRequest, context: Context
    ) -> search_pb2.RebuildResponse:
        outcome = await self._admin.rebuild(request.model_id, request.retry_failed)
        return search_pb2.RebuildResponse(
            model_id=outcome.model_id,
            queued=outcome.queued,
            already_queued=outcome.already_queued,
            in_progress=outcome.in_progress,
        )

    async def ListModels(
        self, request: search_pb2.ListModelsRequest, context: Context
    ) -> search_pb2.ListModelsResponse:
        models = await self._admin.list_models()
        return search_pb2.ListModelsResponse(
            models=[
                search_pb2.ModelInfo(
                    model_id=m.model_id, dim=m.dim, embedded=m.embedded, active=m.active
                )
                for m in models
            ]
        )

    async def SetActiveModel(
        self, request: search_pb2.SetActiveModelRequest, context: Context
    ) -> search_pb2.SetActiveModelResponse:
        active = await self._admin.set_active_model(request.model_id, request.force)
        return search_pb2.SetActiveModelResponse(active_model_id=active)

    async def DuplicateReport(
        self, request: search_pb2.DuplicateReportRequest, context: Context
    ) -> search_pb2.DuplicateReportResponse:
        report = await self._admin.duplicate_report(
            request.model_id, request.threshold, request.limit
        )
        return search_pb2.DuplicateReportResponse(
            model_id=report.model_id,
            threshold=report.threshold,
            images=report.images,
            exact=report.exact,
            duplicates=[
                search_pb2.DuplicatePair(
                    item_id_a=p.item_id_a,
                    image_id_a=p.image_id_a,
                    item_id_b=p.item_id_b,
                    image_id_b=p.image_id_b,
                    score=p.score,
                )
                for p in report.duplicates
            ],
            confusables=[
                search_pb2.Confusable(
                    item_id=c.item_id,
                    nearest_item_id=c.nearest_item_id,
                    nearest_score=c.nearest_score,
                    own_score=c.own_score,
                    margin=c.margin,
                )
                for c in report.confusables
            ],
        )
