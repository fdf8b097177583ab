"""Protobuf <-> domain translation for the embedder service: requests become Embedder
calls, the status becomes Info."""

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from typing import Any, TypeVar

import grpc

from photosearch.common.local import to_proto
from photosearch.embedder.v1 import embedder_pb2, embedder_pb2_grpc
from photosearch.events.v1 import events_pb2
from photosearch_embedder.runtime_choice import RuntimeChoice
from photosearch_embedder.service import EmbedAsk, Embedder, Fingerprints
from photosearch_embedder.status import EmbedderStatus

T = TypeVar("T")


def _add_runtime(reply: embedder_pb2.InfoResponse, choice: RuntimeChoice) -> None:
    reply.runtime_setting = choice.setting
    reply.runtime = choice.fingerprint.engine.name
    reply.runtime_cached = choice.cached
    if choice.local is not None:
        reply.local_runtime = choice.local.engine.name
    for graph, chosen in choice.graphs():
        for trial in chosen.trials:
            reply.runtime_trials.add(
                graph=graph,
                engine=trial.engine.name,
                rate=trial.rate,
                min_cosine=trial.min_cosine,
                problem=trial.problem,
                chosen=trial.engine == chosen.engine,
            )


def _ask(request: embedder_pb2.EmbedRequest) -> EmbedAsk:
    return EmbedAsk(request.image, tuple(request.variants), tuple(request.local_rotations))


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


async def arrived_batches(requests: AsyncIterator[T], limit: int) -> AsyncGenerator[list[T], None]:
    """The requests of a stream in batches of whatever has already arrived (at most
    `limit`), so that one model call serves all of them."""
    pending: asyncio.Queue[T | None] = asyncio.Queue(limit * 2)

    async def read() -> None:
        async for request in requests:
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
            while len(batch) < limit and not pending.empty():
                following = pending.get_nowait()
                if following is None:
                    finished = True
                    break
                batch.append(following)
            yield batch
        await reader
    finally:
        reader.cancel()


class EmbedderServicer(embedder_pb2_grpc.EmbedderServiceServicer):
    def __init__(self, status: EmbedderStatus) -> None:
        self.status = status

    async def Embed(
        self, request: embedder_pb2.EmbedRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> embedder_pb2.EmbedResponse:
        embedder = self.status.ready_embedder()
        result = await embedder.embed_photo(
            request.image, list(request.variants), list(request.local_rotations)
        )
        return _response(embedder, request.ref, result)

    async def EmbedStream(
        self,
        request_iterator: AsyncIterator[embedder_pb2.EmbedRequest],
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> AsyncIterator[embedder_pb2.EmbedResponse]:
        embedder = self.status.ready_embedder()
        async with aclosing(arrived_batches(request_iterator, self.status.batch_size)) as batches:
            async for batch in batches:
                results = await embedder.embed_each([_ask(r) for r in batch])
                for request, result in zip(batch, results, strict=True):
                    yield _response(embedder, request.ref, result)

    async def Info(
        self, request: embedder_pb2.InfoRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> embedder_pb2.InfoResponse:
        status = self.status
        model = status.model_state()
        reply = embedder_pb2.InfoResponse(
            worker_id=status.identity.worker_id,
            batch_size=status.batch_size,
            version=status.identity.version,
            index_variants=status.index_variants,
            available=model.available,
            model_note=model.note,
            quantization=model.quantization,
        )
        if model.available:
            reply.model_id = model.model_id
            reply.dim = model.dim
            reply.device = model.device
            reply.loaded = model.loaded
            reply.local_dim = model.local_dim
        if model.choice is not None:
            _add_runtime(reply, model.choice)
        if (depth := await status.queue_depth()) is not None:
            reply.queue_pending, reply.queue_in_flight = depth
        return reply
