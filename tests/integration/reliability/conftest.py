"""One mesh of real processes for every fault test in this folder (each test leaves it
healthy again), with photo search on and a few items already embedded."""

from collections.abc import Iterator

import pytest

from photosearch_devstack.mesh import Mesh
from tests.support.fake_vision import FakeVision
from tests.support.mesh import mesh_env, model, photo, running_mesh
from tests.support.mesh_api import Api, Seed
from tests.support.reliability import SEED_ITEMS, VISION_KEY


@pytest.fixture(scope="package")
def vision() -> Iterator[FakeVision]:
    with FakeVision(api_key=VISION_KEY) as fake:
        yield fake


@pytest.fixture(scope="package")
def mesh(tmp_path_factory: pytest.TempPathFactory, vision: FakeVision) -> Iterator[Mesh]:
    env = mesh_env(
        model(),
        FALLBACK_VISION_ENDPOINT=vision.endpoint,
        # Jobs of a killed worker come back quickly; small batches make "mid-batch" likely.
        EMBED_ACK_WAIT_SECONDS="4",
        EMBED_BATCH_SIZE="4",
        # A hung dependency is given up on after this long.
        GATEWAY_RPC_TIMEOUT_SECONDS="2",
    )
    with running_mesh(tmp_path_factory.mktemp("faults") / "data", env) as running:
        yield running


@pytest.fixture(scope="package")
def api(mesh: Mesh) -> Iterator[Api]:
    client = Api.open(mesh)
    yield client
    client.close()


@pytest.fixture(scope="package")
def seed(api: Api) -> Seed:
    api.settings(photo_search_enabled=True)
    items = [api.add_item_with_photo(f"Seed {n}", photo(n)) for n in range(SEED_ITEMS)]
    status = api.wait_embedded(SEED_ITEMS)
    return Seed(status["model_id"], items)
