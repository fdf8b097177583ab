"""A real catalog server (gRPC on a free port, its own fresh database, the shared
NATS) per test, and a reader of the catalog's events (tests/support/catalog.py)."""

from collections.abc import AsyncIterator

import pytest

from tests.support.catalog import Catalog, EventReader, make_settings, start_catalog


@pytest.fixture
async def catalog(database_url, nats_server) -> AsyncIterator[Catalog]:
    service, running = await start_catalog(make_settings(database_url, nats_server.url))
    yield running
    await service.stop()


@pytest.fixture
async def events(nats_server) -> AsyncIterator[EventReader]:
    reader = await EventReader(nats_server.url).start()
    yield reader
    await reader.close()
