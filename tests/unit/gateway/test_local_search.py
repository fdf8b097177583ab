"""Local descriptors on POST /api/v1/search: validated with the shared codec, passed to
search as they came, re-ranking reported back; the model's local graph in /config."""

import base64
import math
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from photosearch.common.local import SALIENT_CELLS, from_proto
from photosearch.common.model_files import sri_sha256
from photosearch_gateway.app import create_app
from photosearch_gateway.config import GatewaySettings
from photosearch_gateway.local_query import LOCAL_BODY_BYTES
from photosearch_search.rerank import RerankSettings
from tests.unit.gateway.fakes import MODEL, World, write_model

VECTOR = [0.5, 0.5, 0.5, 0.5]
LOCAL_DIM = 64
TWO_CELLS = base64.b64encode(bytes(2 * LOCAL_DIM)).decode()
CELLS_251 = base64.b64encode(bytes(251 * LOCAL_DIM)).decode()


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    write_model(tmp_path / "models", local_dim=LOCAL_DIM)
    return tmp_path / "models"


def view(
    rows: int, cols: int, dim: int = LOCAL_DIM, seed: int = 0, **extra: object
) -> dict[str, Any]:
    codes = np.random.default_rng(seed).integers(-127, 128, rows * cols * dim, dtype=np.int8)
    return {
        "rows": rows,
        "cols": cols,
        "dim": dim,
        "codes": base64.b64encode(codes.tobytes()).decode(),
        **extra,
    }


def query(**overrides: object) -> dict[str, object]:
    return {"model_id": MODEL, "vector": VECTOR, "k": 5, **overrides}


async def test_config_offers_the_local_graph_with_its_integrity(
    client: httpx.AsyncClient,
) -> None:
    model = (await client.get("/api/v1/config")).json()["model"]
    local = model["local"]
    assert model["preprocess"]["local"]["dim"] == LOCAL_DIM
    assert local["salient_cells"] == SALIENT_CELLS
    assert local["onnx_integrity"] == sri_sha256(local["onnx_sha256"])
    assert local["onnx_url"].endswith(f"/local.onnx?v={local['onnx_sha256'][:16]}")
    onnx = await client.get(local["onnx_url"])
    assert onnx.status_code == 200 and len(onnx.content) == local["onnx_bytes"]
    assert onnx.headers["cache-control"] == "public, max-age=31536000, immutable"


async def test_config_without_a_local_graph_says_none(tmp_path: Path, upstream: str) -> None:
    write_model(tmp_path / "plain")
    settings = GatewaySettings(
        catalog_addr=upstream, search_addr=upstream, model_dir=tmp_path / "plain"
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
            model = (await http.get("/api/v1/config")).json()["model"]
            assert model["local"] is None
            reply = await http.post("/api/v1/search", json=query(local=[view(2, 3)]))
    assert reply.status_code == 400
    assert reply.json()["error"]["code"] == "local_unsupported"
    assert "fingerprint alone" in reply.json()["error"]["message"]


async def test_local_views_reach_search_as_sent_and_reranking_comes_back(
    client: httpx.AsyncClient, world: World
) -> None:
    plain = world.add_item("Plain")
    verified = world.add_item("Verified")
    world.add_image(plain.id, b"\x89PNG1", [0.5, 0.5, 0.5, 0.5])
    image = world.add_image(verified.id, b"\x89PNG2", [0.5, 0.5, 0.5, 0.4])
    world.inliers[image] = 12
    chance = world.add_item("Chance")
    chance_inliers = RerankSettings().min_inliers - 1  # a few, by chance: under the floor
    world.inliers[world.add_image(chance.id, b"\x89PNG3", [0.5, 0.5, 0.4, 0.4])] = chance_inliers
    views = [view(20, 28, seed=1), view(28, 20, seed=2), view(28, 20, seed=3, cells=[0, 5, 559])]
    views[2]["codes"] = base64.b64encode(bytes(3 * LOCAL_DIM)).decode()
    reply = await client.post("/api/v1/search", json=query(local=views))
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["reranked"] is True
    first, second, third = body["candidates"]
    assert first["item"]["name"] == "Verified" and first["inliers"] == 12
    # Search's verification (its inliers over the others', which are under the floor)
    # and its badge come through as they are.
    rule = RerankSettings()
    assert first["verification"] == pytest.approx(math.log1p(12) - rule.margin, abs=1e-5)
    assert first["score"] == pytest.approx(
        first["global_score"] + rule.weight * first["verification"], abs=1e-5
    )
    assert first["verified"] is True and body["band"] == "match"
    assert all(c["from_regions"] is False for c in body["candidates"])
    assert second["inliers"] == 0 and second["score"] == second["global_score"]
    assert third["item"]["name"] == "Chance" and third["inliers"] == chance_inliers
    assert third["score"] == third["global_score"] and third["verified"] is False
    assert second["verified"] is False
    sent = world.last_search
    assert sent is not None and len(sent.local) == 3
    for message, given in zip(sent.local, views, strict=True):
        assert (message.rows, message.cols, message.dim) == (
            given["rows"],
            given["cols"],
            given["dim"],
        )
        assert message.codes == base64.b64decode(given["codes"])
        assert list(message.cells) == given.get("cells", [])
        from_proto(message, dim=LOCAL_DIM)  # search's own check passes


async def test_without_local_nothing_is_reranked(client: httpx.AsyncClient, world: World) -> None:
    item = world.add_item("Only")
    image = world.add_image(item.id, b"\x89PNG1", VECTOR)
    world.inliers[image] = 30
    body = (await client.post("/api/v1/search", json=query())).json()
    assert body["reranked"] is False
    (only,) = body["candidates"]
    assert only["inliers"] == 0 and only["global_score"] == only["score"]
    assert only["verified"] is False
    assert world.last_search is not None and not world.last_search.local


@pytest.mark.parametrize(
    ("views", "field", "words"),
    [
        ([view(2, 3, dim=32)], "local.0", "dim must be 64, got 32"),
        ([view(2, 3), {**view(2, 3), "codes": "AAAA"}], "local.1", "need 384 bytes of codes"),
        ([{**view(2, 3), "codes": "not base64!"}], "local.0", "not valid base64"),
        ([{**view(2, 3), "cells": [4, 2], "codes": TWO_CELLS}], "local.0", "ascending"),
        ([{**view(2, 3), "cells": [0, 6], "codes": TWO_CELLS}], "local.0", "0..5, ascending"),
        (
            [view(2, 3), {**view(20, 20, cells=list(range(251))), "codes": CELLS_251}],
            "local.1",
            "at most 250 cells, got 251",
        ),
    ],
)
async def test_malformed_local_views_are_400_naming_the_view(
    client: httpx.AsyncClient, world: World, views: list[dict[str, Any]], field: str, words: str
) -> None:
    reply = await client.post("/api/v1/search", json=query(local=views))
    assert reply.status_code == 400, reply.text
    error = reply.json()["error"]
    assert error["code"] == "invalid_argument"
    assert words in error["message"] and error["message"].startswith(field.replace(".", "["))
    assert error["details"]["problems"][0]["field"] == field
    assert "Search" not in world.calls


@pytest.mark.parametrize(
    ("local", "field"),
    [
        ([view(2, 3)] * 5, "local"),
        ([view(41, 3)], "local.0.rows"),
        ([{**view(2, 3), "pixels": "AAAA"}], "local.0.pixels"),
        ([{k: v for k, v in view(2, 3).items() if k != "codes"}], "local.0.codes"),
        # Past any grid, and past what the message's int32 can carry: a 400, not a 500.
        ([{**view(2, 3), "cells": [0, 2**31], "codes": TWO_CELLS}], "local.0.cells.1"),
    ],
)
async def test_local_views_out_of_bounds_are_400(
    client: httpx.AsyncClient, world: World, local: list[dict[str, Any]], field: str
) -> None:
    reply = await client.post("/api/v1/search", json=query(local=local))
    assert reply.status_code == 400, reply.text
    assert reply.json()["error"]["details"]["problems"][0]["field"] == field
    assert "Search" not in world.calls


async def test_four_full_grids_fit_the_search_body_limit(
    client: httpx.AsyncClient, world: World
) -> None:
    """The largest valid query (four full 40 x 40 grids, a 4096-value fingerprint written
    at full precision) is under the search limit; JSON routes other than search keep the
    smaller limit."""
    settings = GatewaySettings()
    grids = [view(40, 40, seed=n) for n in range(4)]
    fingerprint = [-0.012345678901234567] * 4096
    largest = query(vector=fingerprint, local=grids)
    size = len(httpx.Request("POST", "/", json=largest).content)
    assert settings.max_json_bytes < size <= settings.max_search_bytes
    assert settings.max_search_bytes >= settings.max_json_bytes + LOCAL_BODY_BYTES
    reply = await client.post("/api/v1/search", json=query(local=grids))
    assert reply.status_code == 200, reply.text
    assert world.last_search is not None and len(world.last_search.local) == 4
    too_big = {"name": "x" * 10, "tags": ["y" * 60] * (settings.max_json_bytes // 60)}
    refused = await client.post("/api/v1/items", json=too_big)
    assert refused.status_code == 413


async def test_turned_views_wanted_comes_back_from_search(
    client: httpx.AsyncClient, world: World
) -> None:
    """Search asks for the turned views when the one view sent verified nothing well; the
    page then searches again with all three."""
    item = world.add_item("Sideways")
    image = world.add_image(item.id, b"\x89PNG1", VECTOR)
    world.inliers[image] = 12  # verified, but not well enough to skip the turns
    upright = view(20, 28, seed=1)
    one = await client.post("/api/v1/search", json=query(local=[upright]))
    assert one.status_code == 200, one.text
    assert one.json()["turned_views_wanted"] is True
    assert one.json()["candidates"][0]["verified"] is True
    three = [upright, view(28, 20, seed=2), view(28, 20, seed=3)]
    body = (await client.post("/api/v1/search", json=query(local=three))).json()
    assert body["turned_views_wanted"] is False
    assert world.last_search is not None and len(world.last_search.local) == 3
    world.inliers[image] = 15
    well = (await client.post("/api/v1/search", json=query(local=[upright]))).json()
    assert well["turned_views_wanted"] is False
    plain = (await client.post("/api/v1/search", json=query())).json()
    assert plain["turned_views_wanted"] is False
    schema = (await client.get("/openapi.json")).json()["components"]["schemas"]["SearchResult"]
    assert schema["properties"]["turned_views_wanted"]["type"] == "boolean"
