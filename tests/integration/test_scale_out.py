"""`make run EMBEDDERS=2 SEARCH=2`: the dev stack with two embedder and two search
replicas. Both embedders take jobs from the shared queue and no photo is embedded twice;
the gateway spreads searches over both search replicas; both embedders stay listed."""

import re
from pathlib import Path

import httpx
import pytest

from photosearch_devstack.mesh import Mesh
from tests.support.mesh import eventually, mesh_env, model, photo
from tests.support.mesh_api import Api, assert_one_vector_per_image, settle
from tests.support.mesh_state import stored_vector
from tests.support.metrics import Scrape

pytestmark = pytest.mark.slow
PHOTOS = 24


def counter(mesh: Mesh, name: str, metric: str, **labels: str) -> float:
    """A counter of one process, summed over the series matching the labels."""
    return Scrape(httpx.get(mesh.metrics_url(name), timeout=5).text).total(metric, **labels)


def test_two_embedders_share_the_queue_and_two_search_replicas_share_the_searches(
    tmp_path: Path,
) -> None:
    # Small batches and one in flight per worker: the queue has work for both workers.
    env = mesh_env(model(), EMBED_RUNTIME="onnxruntime", EMBED_BATCH_SIZE="2")
    mesh = Mesh(tmp_path / "data", extra_env=env, replicas={"embedder": 2, "search": 2})
    assert mesh.instances == [
        "catalog", "search", "search-2", "embedder", "embedder-2", "fallback", "gateway",
    ]  # fmt: skip
    with mesh:
        api = Api.open(mesh)
        try:
            api.settings(photo_search_enabled=True)
            workers = eventually(
                lambda: len(api.index()["workers"]) == 2 or None, 60, "both embedders listed"
            )
            assert workers
            added = [api.add_item_with_photo(f"Scale {n:02d}", photo(n)) for n in range(PHOTOS)]
            status = settle(api)
            model_id = status["model_id"]
            assert_one_vector_per_image(api, model_id)  # no photo embedded twice
            done = [
                counter(mesh, name, "embedder_jobs_total", outcome="completed")
                for name in mesh.replicas_of("embedder")
            ]
            assert sum(done) == PHOTOS and min(done) > 0, done
            item_id, image_id = added[0]
            vector = stored_vector(mesh, model_id, image_id)
            for _ in range(20):
                reply = api.search(model_id, vector, k=3)
                assert (
                    reply.status_code == 200
                    and reply.json()["candidates"][0]["item"]["id"] == item_id
                )
            served = [
                counter(mesh, name, "grpc_server_handled_total", grpc_method="Search")
                for name in mesh.replicas_of("search")
            ]
            assert sum(served) >= 20 and min(served) >= 5, served
            assert len(api.index()["workers"]) == 2
            assert re.fullmatch(r"ipv4:127\.0\.0\.1:\d+,127\.0\.0\.1:\d+", mesh.target("search"))
        finally:
            api.close()
