"""A gateway app in the test's loop, talking to in-memory fake services over real gRPC."""

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from photosearch_gateway.app import create_app
from photosearch_gateway.config import GatewaySettings
from tests.support.gateway_app import ADMIN_TOKEN, CONTRIBUTOR_TOKEN
from tests.unit.gateway.fakes import World, start_fakes, write_model


@pytest.fixture
def world() -> World:
    w = World()
    w.settings.photo_search_enabled = True
    return w


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    write_model(tmp_path / "models")
    return tmp_path / "models"


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {}


@pytest.fixture
async def upstream(world: World) -> AsyncIterator[str]:
    server, address = await start_fakes(world)
    yield address
    await server.stop(None)


@pytest.fixture
def settings(upstream: str, model_dir: Path, settings_overrides: dict[str, object]):
    values: dict[str, object] = {
        "catalog_addr": upstream,
        "search_addr": upstream,
        "embedder_addr": upstream,
        "fallback_addr": upstream,
        "admin_token": ADMIN_TOKEN,
        "contributor_token": CONTRIBUTOR_TOKEN,
        "model_dir": model_dir,
        "cache_seconds": 0,
        **settings_overrides,
    }
    return GatewaySettings(**values)  # type: ignore[arg-type]


@pytest.fixture
async def client(settings: GatewaySettings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("10.0.0.1", 1234))
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
            http.app = app  # type: ignore[attr-defined]
            yield http


@pytest.fixture
def admin() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
def contributor() -> dict[str, str]:
    return {"Authorization": f"Bearer {CONTRIBUTOR_TOKEN}"}
