"""Search with its real neighbours: Postgres+pgvector, NATS JetStream (one server per
test, so heartbeats and streams never leak between tests) and the real catalog service."""

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import grpc
import numpy as np
import pytest
from cryptography.fernet import Fernet
from nats.aio.client import Client
from nats.js import JetStreamContext

from photosearch.catalog.v1 import catalog_pb2_grpc
from photosearch.common import subjects
from photosearch.common.nats import connect, ensure_kv, publish
from photosearch.events.v1 import events_pb2
from photosearch.search.v1 import search_pb2, search_pb2_grpc
from photosearch_catalog.config import CatalogSettings
from photosearch_catalog.server import build_server as build_catalog
from photosearch_devstack.nats_server import NatsServer
from photosearch_devstack.postgres import EmbeddedPostgres
from photosearch_search.config import SearchSettings
from photosearch_search.server import build_server as build_search
from tests.support.services import RunningService, start_service

T = TypeVar("T")
DIM = 16


@pytest.fixture
def nats_url(tmp_path: Path) -> Iterator[str]:
    server = NatsServer(tmp_path / "js", log_file=tmp_path / "nats.log").start()
    yield server.url
    server.stop()


@pytest.fixture
def model_id() -> str:
    return f"test/model-{uuid.uuid4().hex[:8]}"


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


@pytest.fixture
async def start_harness(
    postgres: EmbeddedPostgres, nats_url: str, model_id: str
) -> AsyncIterator[Callable[..., Awaitable[Harness]]]:
    """Call with SearchSettings overrides; the default model is this test's model."""
    started: list[RunningService] = []
    clients: list[Client] = []
    channels: list[grpc.aio.Channel] = []

    async def start(**overrides: Any) -> Harness:
        catalog = await start_service(
            build_catalog,
            CatalogSettings(
                grpc_port=0,
                host="127.0.0.1",
                database_url=postgres.create_database(f"cat_{uuid.uuid4().hex[:10]}"),
                nats_url=nats_url,
                settings_key=Fernet.generate_key().decode(),
                outbox_poll_seconds=0.1,
            ),
        )
        started.append(catalog)
        settings = {
            "grpc_port": 0,
            "host": "127.0.0.1",
            "database_url": postgres.create_database(f"search_{uuid.uuid4().hex[:10]}"),
            "nats_url": nats_url,
            "catalog_addr": catalog.address,
            "default_model_id": model_id,
            "workers_poll_seconds": 0.2,
            **overrides,
        }
        search = await start_service(build_search, SearchSettings(**settings))
        started.append(search)
        nc = await connect(nats_url, "search-tests")
        clients.append(nc)
        channel, catalog_channel = search.channel(), catalog.channel()
        channels.extend([channel, catalog_channel])
        return Harness(
            search,
            catalog,
            nc,
            nc.jetstream(),
            search_pb2_grpc.SearchServiceStub(channel),  # type: ignore[no-untyped-call]
            catalog_pb2_grpc.CatalogServiceStub(catalog_channel),  # type: ignore[no-untyped-call]
            model_id,
        )

    yield start
    for channel in channels:
        await channel.close(None)
    for nc in clients:
        await nc.close()
    for service in reversed(started):
        await service.stop()
