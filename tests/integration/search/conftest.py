"""Search with its real neighbours: Postgres+pgvector, NATS JetStream (one server per
test, so heartbeats and streams never leak between tests) and the real catalog service.
Fixtures only: the Harness they return and the other helpers are tests/support/search.py's."""

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography.fernet import Fernet
from nats.aio.client import Client

from photosearch.catalog.v1 import catalog_pb2_grpc
from photosearch.common.nats import connect
from photosearch.search.v1 import search_pb2_grpc
from photosearch_catalog.config import CatalogSettings
from photosearch_catalog.server import build_server as build_catalog
from photosearch_devstack.nats_server import NatsServer
from photosearch_devstack.postgres import EmbeddedPostgres
from photosearch_search.config import SearchSettings
from photosearch_search.server import build_server as build_search
from tests.support.search import Harness
from tests.support.services import RunningService, start_service


@pytest.fixture
def nats_url(tmp_path: Path) -> Iterator[str]:
    server = NatsServer(tmp_path / "js", log_file=tmp_path / "nats.log").start()
    yield server.url
    server.stop()


@pytest.fixture
def model_id() -> str:
    return f"test/model-{uuid.uuid4().hex[:8]}"


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
