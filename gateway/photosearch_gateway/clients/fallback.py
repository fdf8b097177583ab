"""Calls to the fallback service: a photo's web leads (Google Vision Web Detection)."""

from photosearch.fallback.v1 import fallback_pb2 as pb
from photosearch.fallback.v1 import fallback_pb2_grpc
from photosearch_gateway.clients.base import Upstream


class FallbackClient:
    def __init__(self, upstream: Upstream) -> None:
        self.rpc = upstream
        self.stub = fallback_pb2_grpc.FallbackServiceStub(upstream.channel)

    async def web_detect(self, image: bytes, max_results: int) -> pb.WebDetectResponse:
        request = pb.WebDetectRequest(image=image, max_results=max_results)
        return await self.rpc.unary("WebDetect", self.stub.WebDetect, request)
