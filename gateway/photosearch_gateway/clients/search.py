"""Calls to the search service: nearest items, index status, rebuild, models, duplicates."""

from photosearch.search.v1 import search_pb2 as pb
from photosearch.search.v1 import search_pb2_grpc
from photosearch_gateway.clients.base import Upstream


class SearchClient:
    def __init__(self, upstream: Upstream, admin_timeout: float) -> None:
        self.rpc = upstream
        self.admin_timeout = admin_timeout
        self.stub = search_pb2_grpc.SearchServiceStub(upstream.channel)

    async def search(self, request: pb.SearchRequest) -> pb.SearchResponse:
        return await self.rpc.unary("Search", self.stub.Search, request)

    async def index_status(self, model_id: str = "") -> pb.IndexStatusResponse:
        request = pb.IndexStatusRequest(model_id=model_id)
        return await self.rpc.unary("IndexStatus", self.stub.IndexStatus, request)

    async def rebuild(self, model_id: str, retry_failed: bool) -> pb.RebuildResponse:
        request = pb.RebuildRequest(model_id=model_id, retry_failed=retry_failed)
        return await self.rpc.unary("Rebuild", self.stub.Rebuild, request, self.admin_timeout)

    async def list_models(self) -> list[pb.ModelInfo]:
        reply = await self.rpc.unary("ListModels", self.stub.ListModels, pb.ListModelsRequest())
        return list(reply.models)

    async def set_active_model(self, model_id: str, force: bool) -> str:
        request = pb.SetActiveModelRequest(model_id=model_id, force=force)
        reply = await self.rpc.unary("SetActiveModel", self.stub.SetActiveModel, request)
        return reply.active_model_id

    async def duplicate_report(
        self, model_id: str, threshold: float, limit: int
    ) -> pb.DuplicateReportResponse:
        request = pb.DuplicateReportRequest(model_id=model_id, threshold=threshold, limit=limit)
        return await self.rpc.unary(
            "DuplicateReport", self.stub.DuplicateReport, request, self.admin_timeout
        )
