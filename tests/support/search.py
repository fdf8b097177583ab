"""Helpers of the search tests: a running search (and catalog) to drive over NATS and
gRPC, vectors, and waiting for asynchronous effects. The fixtures that start them are
in tests/integration/search/conftest.py."""

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
import numpy as np
from nats.aio.client import Client
from nats.js import JetStreamContext

from photosearch.catalog.v1 import catalog_pb2_grpc
from photosearch.common import subjects
from photosearch.common.nats import ensure_kv, publish
from photosearch.events.v1 import events_pb2
from photosearch.search.v1 import search_pb2, search_pb2_grpc
from tests.support.services import RunningService

T = TypeVar("T")
DIM = 16


async def eventually(check: Callable[[], Awaitable[T]], timeout: float = 15.0) -> T:
    """Retry `check` until it passes (events are asynchronous): until then it may fail
    an assertion or get an error from a service that has not seen the events yet."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            return await check()
        except (AssertionError, grpc.aio.AioRpcError):
            if asyncio.get_running_loop().time() > deadline:
                raise
        await asyncio.sleep(0.05)


def unit(values: Any) -> np.ndarray:
    v = np.asarray(values, dtype=np.float32)
    return v / np.linalg.norm(v)


@dataclass
class Harness:
    """A running search (and catalog) plus a NATS connection to play the other services."""

    search: RunningService
    catalog: RunningService
    nc: Client
    js: JetStreamContext
    stub: search_pb2_grpc.SearchServiceStub
    catalog_stub: catalog_pb2_grpc.CatalogServiceStub
    model_id: str

    async def completed(
        self,
        image_id: str,
        item_id: str,
        vector: Any,
        model_id: str | None = None,
        variants: dict[str, Any] | None = None,
        local: events_pb2.LocalDescriptors | None = None,
    ) -> None:
        embeddings = [events_pb2.Embedding(variant="global", values=list(map(float, vector)))]
        for name, values in (variants or {}).items():
            embeddings.append(events_pb2.Embedding(variant=name, values=list(map(float, values))))
        event = events_pb2.EmbedCompleted(
            image_id=image_id,
            item_id=item_id,
            model_id=model_id or self.model_id,
            embeddings=embeddings,
            worker_id="test-worker",
            local=local,
        )
        await publish(self.js, subjects.EMBED_COMPLETED, event)

    async def failed(self, image_id: str, item_id: str, reason: str) -> None:
        await self.failed_for(self.model_id, image_id, item_id, reason)

    async def failed_for(self, model_id: str, image_id: str, item_id: str, reason: str) -> None:
        event = events_pb2.EmbedFailed(
            image_id=image_id, item_id=item_id, model_id=model_id, reason=reason
        )
        await publish(self.js, subjects.EMBED_FAILED, event)

    async def catalog_event(self, subject: str, event: Any) -> None:
        await publish(self.js, subject, event, msg_id=uuid.uuid4().hex)

    async def heartbeat(self, model_id: str, dim: int = DIM, worker_id: str = "w1") -> None:
        kv = await ensure_kv(self.js, subjects.WORKERS_BUCKET, ttl=10.0)
        beat = events_pb2.WorkerHeartbeat(
            worker_id=worker_id,
            capabilities=["embed"],
            model_id=model_id,
            dim=dim,
            device="cpu",
            batch_size=8,
            version="test",
        )
        beat.started_at.GetCurrentTime()
        await kv.put(worker_id, beat.SerializeToString())

    async def search_items(self, vector: Any, **kwargs: Any) -> search_pb2.SearchResponse:
        request = search_pb2.SearchRequest(vector=list(map(float, vector)), **kwargs)
        return await self.stub.Search(request, timeout=10)
