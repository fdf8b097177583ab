"""GET /api/v1/config and POST /api/v1/search."""

import grpc
import httpx
import pytest

from photosearch.common.model_files import sri_sha256
from photosearch_gateway.config import GatewaySettings
from tests.unit.gateway.fakes import DIM, MODEL, World

VECTOR = [0.5, 0.5, 0.5, 0.5]


def query(**overrides: object) -> dict[str, object]:
    return {"model_id": MODEL, "vector": VECTOR, "k": 5, **overrides}


async def test_config_describes_the_model_the_page_runs(client: httpx.AsyncClient) -> None:
    reply = await client.get("/api/v1/config")
    assert reply.status_code == 200
    body = reply.json()
    assert body["photo_search_enabled"] and body["photo_search_available"]
    model = body["model"]
    assert model["model_id"] == MODEL and model["dim"] == DIM
    assert model["onnx_integrity"] == sri_sha256(model["onnx_sha256"])
    assert model["onnx_url"].endswith(f"model.onnx?v={model['onnx_sha256'][:16]}")
    assert model["preprocess"]["resize"]["short_side"] == 4
    onnx = await client.get(model["onnx_url"])
    assert onnx.status_code == 200 and onnx.content.startswith(b"onnx-bytes-")
    assert onnx.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert body["web_fallback_available"] is False


async def test_config_says_why_photo_search_is_unavailable(
    client: httpx.AsyncClient, world: World
) -> None:
    world.settings.photo_search_enabled = False
    body = (await client.get("/api/v1/config")).json()
    assert body["photo_search_available"] is False and body["model"] is None
    assert "turned off" in body["unavailable_reason"]
    world.settings.photo_search_enabled = True
    world.active_model = "other/model"
    body = (await client.get("/api/v1/config")).json()
    assert body["photo_search_available"] is False
    assert "other/model has not been exported" in body["unavailable_reason"]


async def test_search_returns_ranked_items_with_names_and_thumbnails(
    client: httpx.AsyncClient, world: World
) -> None:
    near = world.add_item("Red car", series="Cars")
    far = world.add_item("Blue boat")
    near_image = world.add_image(near.id, b"\x89PNG1", [0.5, 0.5, 0.5, 0.5])
    world.add_image(far.id, b"\x89PNG2", [1.0, 0.0, 0.0, 0.0])
    reply = await client.post("/api/v1/search", json=query())
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert [c["item"]["name"] for c in body["candidates"]] == ["Red car", "Blue boat"]
    first = body["candidates"][0]
    assert first["item"]["series"] == "Cars" and first["image_id"] == near_image
    assert first["score"] == pytest.approx(1.0)
    assert first["thumbnail_url"] == f"/api/v1/images/{near_image}/thumbnail?size=256"
    assert world.last_search is not None and world.last_search.k == 5
    # The names came with search's answer: no round trip to catalog.
    assert "BatchGetItems" not in world.calls
    # Where the time went: search's stages (its name lookup last), then the Search RPC.
    timing = [part.split(";dur=") for part in reply.headers["server-timing"].split(", ")]
    assert [stage for stage, _ in timing] == ["candidates", "names", "search"]
    assert timing[0][1] == "1.25" and all(float(ms) >= 0 for _, ms in timing)


async def test_search_asks_catalog_only_for_items_search_has_not_heard_of(
    client: httpx.AsyncClient, world: World
) -> None:
    known = world.add_item("Red car", series="Cars")
    new = world.add_item("Green van")
    world.add_image(known.id, b"\x89PNG1", [0.5, 0.5, 0.5, 0.5])
    world.add_image(new.id, b"\x89PNG2", [1.0, 0.0, 0.0, 0.0])
    world.unheard.add(new.id)
    # The item added moments ago has its name from catalog, asked for that item alone.
    reply = await client.post("/api/v1/search", json=query())
    assert reply.status_code == 200, reply.text
    names = [c["item"]["name"] for c in reply.json()["candidates"]]
    assert names == ["Red car", "Green van"]
    assert world.calls.count("BatchGetItems") == 1
    timing = [part.split(";dur=")[0] for part in reply.headers["server-timing"].split(", ")]
    assert timing == ["candidates", "names", "search", "catalog"]


async def test_search_drops_items_deleted_since_indexing(
    client: httpx.AsyncClient, world: World
) -> None:
    gone = world.add_item("Gone")
    world.add_image(gone.id, b"\x89PNG3", VECTOR)
    del world.items[gone.id]  # before search heard of the deletion (and never named it)
    body = (await client.post("/api/v1/search", json=query())).json()
    assert body["candidates"] == []


async def test_search_refused_while_photo_search_is_off(
    client: httpx.AsyncClient, world: World
) -> None:
    world.settings.photo_search_enabled = False
    reply = await client.post("/api/v1/search", json=query())
    assert reply.status_code == 409
    assert reply.json()["error"]["code"] == "photo_search_disabled"
    assert "Search" not in world.calls


async def test_search_names_the_expected_model_on_a_mismatch(client: httpx.AsyncClient) -> None:
    reply = await client.post("/api/v1/search", json=query(model_id="old/model"))
    assert reply.status_code == 400
    error = reply.json()["error"]
    assert error["code"] == "model_mismatch"
    assert error["details"] == {"expected_model_id": MODEL, "expected_dim": DIM}


async def test_search_refuses_a_wrong_dimension(client: httpx.AsyncClient) -> None:
    reply = await client.post("/api/v1/search", json=query(vector=[0.1, 0.2, 0.3]))
    assert reply.status_code == 400
    assert reply.json()["error"]["code"] == "wrong_dimension"
    assert "3 values" in reply.json()["error"]["message"]


@pytest.mark.parametrize(
    "body",
    [
        b'{"model_id": "test/model@p1", "vector": [NaN, 0, 0, 1]}',
        b'{"model_id": "test/model@p1", "vector": [Infinity, 0, 0, 1]}',
        b'{"model_id": "test/model@p1", "vector": [0, 0, 0, 0]}',
        b'{"model_id": "test/model@p1", "vector": [1e308, 1e308, 0, 1]}',
        b'{"model_id": "test/model@p1", "vector": []}',
        b'{"model_id": "test/model@p1", "vector": [1, 0, 0, 0], "k": 0}',
        b'{"model_id": "test/model@p1", "vector": [1, 0, 0, 0], "image": "AAAA"}',
        b'{"model_id": "test/model@p1", "vector": ["a", 0, 0, 0]}',
        b'{"vector": [1, 0, 0, 0]}',
        b"not json",
        b"",
    ],
)
async def test_search_rejects_bad_fingerprints_with_a_clear_400(
    client: httpx.AsyncClient, world: World, body: bytes
) -> None:
    reply = await client.post(
        "/api/v1/search", content=body, headers={"content-type": "application/json"}
    )
    assert reply.status_code == 400, reply.text
    error = reply.json()["error"]
    assert error["code"] == "invalid_argument" and error["message"]
    assert "Search" not in world.calls


async def test_search_refuses_a_photo(client: httpx.AsyncClient, world: World) -> None:
    reply = await client.post(
        "/api/v1/search", files={"photo": ("p.jpg", b"\xff\xd8\xff" + b"0" * 100, "image/jpeg")}
    )
    assert reply.status_code == 415
    assert "never takes a photo" in reply.json()["error"]["message"]
    raw = await client.post(
        "/api/v1/search", content=b"\xff\xd8\xff", headers={"content-type": "image/jpeg"}
    )
    assert raw.status_code == 415
    assert "Search" not in world.calls


async def test_search_body_size_is_limited(client: httpx.AsyncClient) -> None:
    huge = b'{"model_id": "x", "vector": [' + b"0.1," * 250_000 + b"0.1]}"
    assert len(huge) > GatewaySettings().max_search_bytes
    reply = await client.post(
        "/api/v1/search", content=huge, headers={"content-type": "application/json"}
    )
    assert reply.status_code == 413
    assert reply.json()["error"]["code"] == "too_large"

    async def chunks():  # no Content-Length: the limit holds while the body streams in
        for _ in range(125):
            yield b"0.1," * 2_000

    streamed = await client.post(
        "/api/v1/search", content=chunks(), headers={"content-type": "application/json"}
    )
    assert streamed.status_code == 413


@pytest.mark.parametrize("settings_overrides", [{"search_rate_per_minute": 60, "search_burst": 3}])
async def test_search_is_rate_limited_per_client(client: httpx.AsyncClient) -> None:
    codes = [(await client.post("/api/v1/search", json=query())).status_code for _ in range(5)]
    assert codes[:3] == [200, 200, 200] and codes[3:] == [429, 429]
    limited = await client.post("/api/v1/search", json=query())
    assert limited.json()["error"]["code"] == "rate_limited"
    assert int(limited.headers["retry-after"]) >= 1
    metrics = (await client.get("/metrics")).text
    assert 'gateway_rate_limited_total{limit="search"} 3.0' in metrics


@pytest.mark.parametrize("settings_overrides", [{"user_token": "user-token-456"}])
async def test_search_needs_the_user_token_when_one_is_set(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    assert (await client.post("/api/v1/search", json=query())).status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert (await client.post("/api/v1/search", json=query(), headers=wrong)).status_code == 401
    user = {"Authorization": "Bearer user-token-456"}
    assert (await client.post("/api/v1/search", json=query(), headers=user)).status_code == 200
    assert (await client.post("/api/v1/search", json=query(), headers=admin)).status_code == 200
    assert (await client.get("/api/v1/config")).status_code == 200


async def test_config_before_search_has_an_active_model(
    client: httpx.AsyncClient, world: World
) -> None:
    world.active_model = ""
    world.fail["ListModels"] = grpc.StatusCode.UNAVAILABLE
    reply = await client.get("/api/v1/config")
    assert reply.status_code == 503  # search down: the page shows "try again shortly"
    del world.fail["ListModels"]
    world.vectors.clear()
    body = (await client.get("/api/v1/config")).json()
    assert body["photo_search_available"] is False
    assert "no active model yet" in body["unavailable_reason"]


@pytest.mark.parametrize(
    "settings_overrides",
    [{"search_rate_per_minute": 60, "search_burst": 1, "trusted_proxies": "10.0.0.0/24"}],
)
async def test_rate_limit_counts_forwarded_clients_behind_a_trusted_proxy(
    client: httpx.AsyncClient,
) -> None:
    """The test client's peer is 10.0.0.1 (a trusted proxy): each forwarded client has its
    own bucket; a forged header from an untrusted peer would not help (see client_id)."""
    for forwarded in ("198.51.100.1", "198.51.100.2"):
        headers = {"X-Forwarded-For": f"{forwarded}, 10.0.0.1"}
        first = await client.post("/api/v1/search", json=query(), headers=headers)
        second = await client.post("/api/v1/search", json=query(), headers=headers)
        assert (first.status_code, second.status_code) == (200, 429)


@pytest.mark.parametrize(
    "settings_overrides",
    [{"search_rate_per_minute": 60, "search_burst": 1, "trusted_proxies": "10.0.0.0/24"}],
)
async def test_a_client_cannot_dodge_its_rate_limit_by_forging_forwarded_hops(
    client: httpx.AsyncClient,
) -> None:
    """The proxy appends the address it saw; whatever the client wrote to the left of it
    does not give it a fresh bucket."""
    statuses = []
    for forged in ("203.0.113.7", "203.0.113.8, 192.0.2.1"):
        headers = {"X-Forwarded-For": f"{forged}, 198.51.100.9"}
        reply = await client.post("/api/v1/search", json=query(), headers=headers)
        statuses.append(reply.status_code)
    assert statuses == [200, 429]
