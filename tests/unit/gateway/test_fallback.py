"""POST /api/v1/fallback/web."""

import httpx
import pytest

from tests.unit.gateway.fakes import World

PHOTO = {"photo": ("car.jpg", b"\xff\xd8\xff photo bytes", "image/jpeg")}


async def test_refused_with_the_reason_until_enabled_and_configured(
    client: httpx.AsyncClient, world: World
) -> None:
    off = await client.post("/api/v1/fallback/web", files=PHOTO)
    assert off.status_code == 409 and off.json()["error"]["code"] == "fallback_disabled"
    world.settings.web_fallback_enabled = True
    nokey = await client.post("/api/v1/fallback/web", files=PHOTO)
    assert nokey.status_code == 409 and "API key" in nokey.json()["error"]["message"]
    assert "WebDetect" not in world.calls


async def test_returns_grouped_leads_with_a_best_guess(
    client: httpx.AsyncClient, world: World
) -> None:
    world.settings.web_fallback_enabled = True
    world.settings.vision_api_key_set = True
    reply = await client.post("/api/v1/fallback/web", files=PHOTO, data={"max_results": "5"})
    assert reply.status_code == 200, reply.text
    leads = reply.json()
    assert leads["best_guess"] == "red toy car"
    assert leads["entities"][0]["label"] == "Matchbox"
    assert leads["pages"][0]["url"] == "https://example.org/car"
    assert world.last_web_image == PHOTO["photo"][1]
    config = (await client.get("/api/v1/config")).json()
    assert config["web_fallback_available"] is True


@pytest.mark.parametrize("settings_overrides", [{"fallback_burst": 2}])
async def test_is_rate_limited(client: httpx.AsyncClient, world: World) -> None:
    world.settings.web_fallback_enabled = True
    world.settings.vision_api_key_set = True
    codes = [(await client.post("/api/v1/fallback/web", files=PHOTO)).status_code for _ in range(3)]
    assert codes == [200, 200, 429]


async def test_upstream_errors_are_mapped(client: httpx.AsyncClient, world: World) -> None:
    import grpc

    world.settings.web_fallback_enabled = True
    world.settings.vision_api_key_set = True
    world.fail["WebDetect"] = grpc.StatusCode.RESOURCE_EXHAUSTED
    reply = await client.post("/api/v1/fallback/web", files=PHOTO)
    assert reply.status_code == 429
