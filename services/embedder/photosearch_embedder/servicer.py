"""Protobuf <-> domain translation for the embedder service."""

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc

from photosearch.common.errors import Unavailable
from photosearch.common.local import to_proto
from photosearch.common.logging import get_logger
from photosearch.embedder.v1 import embedder_pb2, embedder_pb2_grpc
from photosearch.events.v1 import events_pb2
from photosearch_embedder.lifecycle import EmbedderLifecycle
from photosearch_embedder.service import Embedder, Fingerprints

log = get_logger(__name__)


def _response(embedder: Embedder, ref: str, result: Fingerprints) -> embedder_pb2.EmbedResponse:
    # A photo whose asked local descriptors could not be made fails as a whole (as Embed
    # does), so a caller never takes a partial answer for a complete one.
    failed = str(result.error) if result.error else result.local_error
    return embedder_pb2.EmbedResponse(
        model_id=embedder.model_id,
        dim=embedder.dim,
        ref=ref,
        embeddings=[]
        if failed
        else [events_pb2.Embedding(variant=k, values=v) for k, v in result.vectors.items()],
        error=failed,
        local=[to_proto(grid) for grid in result.local],
    )


class EmbedderServicer(embedder_pb2_grpc.EmbedderServiceServicer):
    def __init__(self, lifecycle: EmbedderLifecycle) -> None:
        self.lifecycle = lifecycle

    def _embedder(self) -> Embedder:
        if self.lifecycle.embedder is None:
            raise Unavailable(f"no model is ready yet: {self.lifecycle.problem}")
        return self.lifecycle.embedder

    async def Embed(
        self, request: embedder_pb2.EmbedRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> embedder_pb2.EmbedResponse:
        embedder = self._embedder()
        result = await embedder.embed_photo(
            request.image, list(request.variants), list(request.local_rotations)
        )
        return _response(embedder, request.ref, result)

    async def EmbedStream(
        self,
        request_iterator: AsyncIterator[embedder_pb2.EmbedRequest],
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> AsyncIterator[embedder_pb2.EmbedResponse]:
        embedder = self._embedder()
        limit = self.lifecycle.settings.batch_size
        pending: asyncio.Queue[embedder_pb2.EmbedRequest | None] = asyncio.Queue(limit * 2)

        async def read() -> None:
            async for request in request_iterator:
                await pending.put(request)
            await pending.put(None)

        reader = asyncio.create_task(read())
        try:
            finished = False
            while not finished:
                first = await pending.get()
                if first is None:
                    break
                batch = [first]
                # Whatever has already arrived joins this batch: one model call for all.
                while len(batch) < limit and not pending.empty():
                    following = pending.get_nowait()
                    if following is None:
                        finished = True
                        break
                    batch.append(following)
                for response in await self._embed_batch(embedder, batch):
                    yield response
            await reader
        finally:
            reader.cancel()

    async def _embed_batch(
        self, embedder: Embedder, batch: list[embedder_pb2.EmbedRequest]
    ) -> list[embedder_pb2.EmbedResponse]:
        groups: dict[tuple[tuple[str, ...], tuple[int, ...]], list[int]] = {}
        for index, request in enumerate(batch):
            key = (tuple(request.variants), tuple(request.local_rotations))
            groups.setdefault(key, []).append(index)
        responses: list[embedder_pb2.EmbedResponse | None] = [None] * len(batch)
        for (variants, rotations), indexes in groups.items():
            images = [batch[i].image for i in indexes]
            results = await embedder.embed(images, list(variants), rotations)
            for i, result in zip(indexes, results, strict=True):
                responses[i] = _response(embedder, batch[i].ref, result)
        return [r for r in responses if r is not None]

    async def Info(
        self, request: embedder_pb2.InfoRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> embedder_pb2.InfoResponse:
        lc = self.lifecycle
        reply = embedder_pb2.InfoResponse(
            worker_id=lc.worker_id,
            batch_size=lc.settings.batch_size,
            version=lc.version,
            index_variants=lc.settings.index_variants,
            available=lc.embedder is not None,
            model_note=lc.model.note if lc.model else lc.problem,
            quantization=lc.quantization,
        )
        if lc.embedder is not None:
            manager = lc.embedder.manager
            reply.model_id = manager.model_id
            reply.dim = manager.dim
            reply.device = manager.device
            reply.loaded = manager.loaded
            reply.local_dim = manager.local_dim
        if lc.worker is not None:
            try:
                reply.queue_pending, reply.queue_in_flight = await lc.worker.queue_depth()
            except Exception as exc:  # NATS away: the rest of the answer still helps
                log.warning("info.queue_depth_failed", error=str(exc))
        return reply
