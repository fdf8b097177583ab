"""The gateway in front of the real services: catalog, search, embedder (the real
EfficientNet-Lite0 export) and fallback (against the fake Google Vision), each on a free
port in this test's loop, with their own databases and NATS server."""

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from cryptography.fernet import Fernet

from photosearch.common.model_files import ModelFiles
from photosearch_catalog.config import CatalogSettings
from photosearch_catalog.server import build_server as build_catalog
from photosearch_devstack.nats_server import NatsServer
from photosearch_devstack.postgres import EmbeddedPostgres
from photosearch_embedder.config import EmbedderSettings
from photosearch_embedder.server import build_server as build_embedder
from photosearch_fallback.config import FallbackSettings
from photosearch_fallback.server import build_server as build_fallback
from photosearch_gateway.app import create_app
from photosearch_gateway.config import GatewaySettings
from photosearch_search.config import SearchSettings
from photosearch_search.server import build_server as build_search
from tests.integration.gateway.models import exported_model
from tests.support.fake_vision import FakeVision
from tests.support.gateway_stack import ADMIN_TOKEN, CONTRIBUTOR_TOKEN, VISION_KEY, Stack
from tests.support.services import RunningService, start_service

_databases = iter(range(10_000))


@pytest.fixture(scope="module")
def model() -> ModelFiles:
    return exported_model()


@pytest.fixture(scope="module")
def module_nats(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("gw-nats")
    server = NatsServer(folder / "js", log_file=folder / "nats.log").start()
    yield server.url
    server.stop()


@pytest.fixture(scope="module")
def vision() -> Iterator[FakeVision]:
    with FakeVision(api_key=VISION_KEY) as fake:
        yield fake


@pytest.fixture(scope="module")
async def stack(
    postgres: EmbeddedPostgres,
    module_nats: str,
    model: ModelFiles,
    vision: FakeVision,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Stack]:
    number = next(_databases)
    catalog_db = postgres.create_database(f"gw_catalog_{number}")
    search_db = postgres.create_database(f"gw_search_{number}")
    # The page downloads the same files the embedder runs.
    cache = model.directory.parent
    services: dict[str, RunningService] = {}
    services["catalog"] = await start_service(
        build_catalog,
        CatalogSettings(
            grpc_port=0,
            database_url=catalog_db,
            nats_url=module_nats,
            settings_key=Fernet.generate_key().decode(),
        ),
    )
    catalog = services["catalog"].address
    services["search"] = await start_service(
        build_search,
        SearchSettings(
            grpc_port=0,
            database_url=search_db,
            nats_url=module_nats,
            catalog_addr=catalog,
            workers_poll_seconds=0.5,
        ),
    )
    services["embedder"] = await start_service(
        build_embedder,
        EmbedderSettings(
            grpc_port=0,
            nats_url=module_nats,
            catalog_addr=catalog,
            model=str(model.directory),
            model_cache_dir=cache,
            heartbeat_interval_seconds=0.5,
            heartbeat_ttl_seconds=2,
            fetch_timeout_seconds=0.5,
        ),
    )
    services["fallback"] = await start_service(
        build_fallback,
        FallbackSettings(grpc_port=0, catalog_addr=catalog, vision_endpoint=vision.endpoint),
    )
    settings = GatewaySettings(
        catalog_addr=catalog,
        search_addr=services["search"].address,
        embedder_addr=services["embedder"].address,
        fallback_addr=services["fallback"].address,
        admin_token=ADMIN_TOKEN,  # type: ignore[arg-type]
        contributor_token=CONTRIBUTOR_TOKEN,  # type: ignore[arg-type]
        model_dir=cache,
        cache_seconds=0,
        search_rate_per_minute=0,
        write_rate_per_minute=0,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport,
            base_url="http://gateway",
            timeout=30,
            # An admin writes: approved at once (moderation: test_moderation.py).
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        ) as http:
            yield Stack(
                services,
                http,
                settings,
                model,
                vision,
                {"Authorization": f"Bearer {ADMIN_TOKEN}"},
            )
    for service in reversed(list(services.values())):
        await service.stop()
