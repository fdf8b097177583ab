"""Calls to the embedder service: one-off server-side fingerprints and worker info."""

from photosearch.embedder.v1 import embedder_pb2 as pb
from photosearch.embedder.v1 import embedder_pb2_grpc
from photosearch_gateway.clients.base import Upstream


class EmbedderClient:
    def __init__(self, upstream: Upstream) -> None:
        self.rpc = upstream
        self.stub = embedder_pb2_grpc.EmbedderServiceStub(upstream.channel)

    async def info(self) -> pb.InfoResponse:
        return await self.rpc.unary("Info", self.stub.Info, pb.InfoRequest())

    async def embed(self, image: bytes, timeout: float | None = None) -> pb.EmbedResponse:
        request = pb.EmbedRequest(image=image)
        return await self.rpc.unary("Embed", self.stub.Embed, request, timeout)
