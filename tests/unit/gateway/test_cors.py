"""CORS: same origin only by default; the origins of GATEWAY_CORS_ORIGINS may call the API
and embed thumbnails, model files and the wasm runtime."""

import httpx
import pytest
from pydantic import ValidationError

from photosearch.common.subjects import model_key
from photosearch_gateway.config import GatewaySettings
from tests.unit.gateway.fakes import MODEL, World

SHOP = "https://shop.example.com"
PNG = b"\x89PNG\r\n\x1a\n" + b"pixels" * 10


def preflight(origin: str, method: str = "POST") -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "authorization, content-type",
    }


async def test_by_default_no_other_origin_is_allowed(
    client: httpx.AsyncClient, world: World
) -> None:
    reply = await client.get("/api/v1/config", headers={"Origin": SHOP})
    assert reply.status_code == 200 and "access-control-allow-origin" not in reply.headers
    asked = await client.options("/api/v1/search", headers=preflight(SHOP))
    assert "access-control-allow-origin" not in asked.headers
    image_id = world.add_image(world.add_item("Boat").id, PNG)
    thumb = await client.get(f"/api/v1/images/{image_id}/thumbnail")
    assert thumb.headers["cross-origin-resource-policy"] == "same-origin"


@pytest.mark.parametrize("settings_overrides", [{"cors_origins": f"{SHOP}, http://localhost:5173"}])
async def test_a_listed_origin_may_call_the_api_and_embed_shared_files(
    client: httpx.AsyncClient, world: World
) -> None:
    asked = await client.options("/api/v1/search", headers=preflight(SHOP))
    assert asked.status_code == 200
    assert asked.headers["access-control-allow-origin"] == SHOP
    assert "POST" in asked.headers["access-control-allow-methods"]
    assert "authorization" in asked.headers["access-control-allow-headers"].lower()
    assert asked.headers["x-request-id"]

    reply = await client.get("/api/v1/config", headers={"Origin": "http://localhost:5173"})
    assert reply.headers["access-control-allow-origin"] == "http://localhost:5173"
    assert "x-request-id" in reply.headers["access-control-expose-headers"].lower()
    # The API's own answers are read through CORS, never embedded.
    assert reply.headers["cross-origin-resource-policy"] == "same-origin"

    image_id = world.add_image(world.add_item("Boat").id, PNG)
    for path in (
        f"/api/v1/images/{image_id}/thumbnail",
        f"/models/{model_key(MODEL)}/model.onnx",
        "/vendor/ort/ort-wasm-simd-threaded.wasm",
    ):
        shared = await client.get(path, headers={"Origin": SHOP})
        assert shared.status_code == 200, path
        assert shared.headers["cross-origin-resource-policy"] == "cross-origin", path
        assert shared.headers["cross-origin-embedder-policy"] == "require-corp", path


@pytest.mark.parametrize("settings_overrides", [{"cors_origins": SHOP}])
async def test_an_origin_not_listed_is_refused(client: httpx.AsyncClient) -> None:
    asked = await client.options("/api/v1/search", headers=preflight("https://evil.example"))
    assert asked.status_code == 400
    assert "access-control-allow-origin" not in asked.headers
    reply = await client.get("/api/v1/config", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in reply.headers


@pytest.mark.parametrize("value", ["shop.example.com", "https://shop.example.com/app", "ftp://x"])
def test_a_setting_that_is_not_an_origin_is_refused_with_what_to_write(value: str) -> None:
    with pytest.raises(ValidationError, match="scheme://host"):
        GatewaySettings(cors_origins=value)
