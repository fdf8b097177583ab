"""Admin routes: auth on every one, the write-only key, the rebuild gate, models, reports."""

import re

import httpx
import pytest

from photosearch.events.v1 import events_pb2
from tests.support.gateway_app import ADMIN_TOKEN
from tests.unit.gateway.fakes import MODEL, World


def admin_operations(client: httpx.AsyncClient) -> list[tuple[str, str]]:
    schema = client.app.openapi()  # type: ignore[attr-defined]
    return [
        (method.upper(), re.sub(r"\{[^}]+\}", "x", path))
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        if path.startswith("/api/v1/admin") or operation.get("security") == [{"AdminToken": []}]
    ]


async def test_every_admin_route_refuses_a_missing_or_wrong_token(
    client: httpx.AsyncClient, world: World
) -> None:
    operations = admin_operations(client)
    assert len(operations) >= 9  # a new route shows up here by itself
    # Every route under /api/v1/admin declares the admin token in the OpenAPI.
    schema = client.app.openapi()  # type: ignore[attr-defined]
    for path, ops in schema["paths"].items():
        if path.startswith("/api/v1/admin"):
            for op in ops.values():
                assert op["security"] == [{"AdminToken": []}], path
    for headers in (
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Bearer {ADMIN_TOKEN}x"},
        {"Authorization": f"Basic {ADMIN_TOKEN}"},
        {"Authorization": ADMIN_TOKEN},
    ):
        for method, path in operations:
            reply = await client.request(method, path, headers=headers, json={})
            assert reply.status_code == 401, (method, path, headers, reply.text)
            assert reply.headers["www-authenticate"] == "Bearer"
            assert reply.json()["error"]["code"] == "unauthenticated"
    assert world.calls == []  # nothing reached a service


@pytest.mark.parametrize("settings_overrides", [{"admin_token": ""}])
async def test_admin_routes_are_off_without_a_configured_token(
    client: httpx.AsyncClient, world: World
) -> None:
    for method, path in admin_operations(client):
        reply = await client.request(method, path, headers={"Authorization": "Bearer "}, json={})
        assert reply.status_code in (401, 503), (method, path)
    reply = await client.get("/api/v1/admin/settings", headers={"Authorization": "Bearer x"})
    assert reply.status_code == 503 and "GATEWAY_ADMIN_TOKEN" in reply.json()["error"]["message"]


async def test_the_vision_key_is_write_only(
    client: httpx.AsyncClient, world: World, admin: dict[str, str]
) -> None:
    key = "AIzaSy-very-secret-key-0042"
    reply = await client.put(
        "/api/v1/admin/settings",
        headers=admin,
        json={"web_fallback_enabled": True, "vision_api_key": key},
    )
    assert reply.status_code == 200, reply.text
    assert reply.json() == {
        "photo_search_enabled": True,
        "web_fallback_enabled": True,
        "vision_api_key_set": True,
        "web_fallback_available": True,
    }
    assert world.vision_key == key
    for path in ("/api/v1/admin/settings", "/api/v1/config", "/metrics", "/openapi.json"):
        assert key not in (await client.get(path, headers=admin)).text
    cleared = await client.put(
        "/api/v1/admin/settings", headers=admin, json={"clear_vision_api_key": True}
    )
    assert cleared.json()["vision_api_key_set"] is False
    both = await client.put(
        "/api/v1/admin/settings",
        headers=admin,
        json={"clear_vision_api_key": True, "vision_api_key": key},
    )
    assert both.status_code == 400 and key not in both.text
    short = await client.put(
        "/api/v1/admin/settings", headers=admin, json={"vision_api_key": "abc"}
    )
    assert short.status_code == 400 and "abc" not in short.text


async def test_settings_changes_apply_to_the_next_search(
    client: httpx.AsyncClient, world: World, admin: dict[str, str]
) -> None:
    off = {"photo_search_enabled": False}
    assert (await client.put("/api/v1/admin/settings", headers=admin, json=off)).status_code == 200
    body = {"model_id": MODEL, "vector": [1, 0, 0, 0]}
    assert (await client.post("/api/v1/search", json=body)).status_code == 409


def worker(model_id: str = MODEL, capabilities: tuple[str, ...] = ("embed",)):
    return events_pb2.WorkerHeartbeat(
        worker_id="w1", capabilities=capabilities, model_id=model_id, device="cpu", dim=4
    )


async def test_rebuild_is_refused_with_the_reason_while_no_worker_is_online(
    client: httpx.AsyncClient, world: World, admin: dict[str, str]
) -> None:
    reply = await client.post("/api/v1/admin/index/rebuild", headers=admin, json={})
    assert reply.status_code == 409
    assert reply.json()["error"]["code"] == "no_embed_worker"
    assert "no embedder worker is online" in reply.json()["error"]["message"]
    world.workers = [worker("other/model"), worker(MODEL, capabilities=("report",))]
    wrong = await client.post("/api/v1/admin/index/rebuild", headers=admin, json={})
    assert wrong.status_code == 409 and "other/model" in wrong.json()["error"]["message"]
    assert "Rebuild" not in world.calls  # the gateway refused before asking search
    status = (await client.get("/api/v1/admin/index", headers=admin)).json()
    assert status["rebuild"]["allowed"] is False and status["rebuild"]["reason"]


async def test_rebuild_goes_ahead_with_a_worker_online(
    client: httpx.AsyncClient, world: World, admin: dict[str, str]
) -> None:
    world.workers = [worker()]
    reply = await client.post(
        "/api/v1/admin/index/rebuild", headers=admin, json={"retry_failed": True}
    )
    assert reply.status_code == 202, reply.text
    assert reply.json()["queued"] == 7 and reply.json()["model_id"] == MODEL
    assert "Rebuild" in world.calls
    bad = await client.post("/api/v1/admin/index/rebuild", headers=admin, json={"force": 1})
    assert bad.status_code == 400


async def test_index_status_shows_progress_workers_and_the_embedder(
    client: httpx.AsyncClient, world: World, admin: dict[str, str]
) -> None:
    item = world.add_item("Car")
    world.add_image(item.id, b"\x89PNG1", [1, 0, 0, 0])
    world.add_image(item.id, b"\x89PNG2")
    world.workers = [worker()]
    status = (await client.get("/api/v1/admin/index", headers=admin)).json()
    assert status["catalog_images"] == 2 and status["embedded"] == 1 and status["pending"] == 1
    assert status["progress"] == 0.5 and status["dim"] == 4
    assert status["workers"][0]["device"] == "cpu"
    assert status["rebuild"] == {"allowed": True, "reason": None}
    assert status["failures"][0]["reason"] == "truncated JPEG"
    assert status["embedder"]["model_note"] == "offline fallback model in use"


async def test_models_and_the_active_model_switch(
    client: httpx.AsyncClient, world: World, admin: dict[str, str]
) -> None:
    models = (await client.get("/api/v1/admin/models", headers=admin)).json()
    assert models["active_model_id"] == MODEL
    ready = {m["model_id"]: m["browser_ready"] for m in models["models"]}
    assert ready == {MODEL: True, "other/model": False}
    url = "/api/v1/admin/models/active"
    refused = await client.put(url, headers=admin, json={"model_id": "other/model"})
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "model_not_exported"
    forced = await client.put(url, headers=admin, json={"model_id": "other/model", "force": True})
    assert forced.status_code == 200 and forced.json() == {"active_model_id": "other/model"}
    assert (await client.get("/api/v1/config")).json()["photo_search_available"] is False
    missing = await client.put(url, headers=admin, json={"model_id": "nope", "force": True})
    assert missing.status_code == 404


async def test_duplicates_report_names_the_items(
    client: httpx.AsyncClient, world: World, admin: dict[str, str]
) -> None:
    world.add_item("Car A")
    world.add_item("Car B")
    report = await client.get(
        "/api/v1/admin/duplicates", headers=admin, params={"threshold": 0.95, "limit": 10}
    )
    assert report.status_code == 200, report.text
    body = report.json()
    for pair in body["duplicates"]:
        assert {pair["a"]["item"]["name"], pair["b"]["item"]["name"]} == {"Car A", "Car B"}
    assert body["confusables"][0]["margin"] == pytest.approx(-0.07)
    assert body["threshold"] == pytest.approx(0.95) and body["exact"] is True
    assert (body["hash_max_distance"], body["hashed_images"], body["unhashed_images"]) == (31, 3, 1)
    assert body["unchecked_copy_candidates"] == 2
    # Hash matches first, closest first; the pair both signals found is one entry; then
    # the copy only the pixel check found.
    copy_only, both, pixels = body["duplicates"]
    assert copy_only["signals"] == ["copy_hash"] and copy_only["score"] is None
    assert (copy_only["hash_distance"], copy_only["hash_view"]) == (2, "as is")
    assert copy_only["pixel_similarity"] is None
    assert pixels["signals"] == ["copy_pixels"] and pixels["score"] is None
    assert pixels["pixel_similarity"] == pytest.approx(0.9712)
    assert pixels["hash_view"] == "aligned by keypoints"
    assert both["signals"] == ["fingerprint", "copy_hash"]
    assert both["score"] == pytest.approx(0.97) and both["hash_view"] == "mirrored"
    assert (both["a"]["copy_hash"], both["b"]["hash_quality"]) == ("0" * 64, 90)
    bad = await client.get("/api/v1/admin/duplicates", headers=admin, params={"threshold": 2})
    assert bad.status_code == 400
    far = await client.get("/api/v1/admin/duplicates", headers=admin, params={"hash_distance": 48})
    assert far.status_code == 400


async def test_admin_deletes(
    client: httpx.AsyncClient, world: World, admin: dict[str, str]
) -> None:
    item = world.add_item("Car")
    image = world.add_image(item.id, b"\x89PNG1")
    assert (await client.delete(f"/api/v1/admin/images/{image}", headers=admin)).status_code == 204
    assert (await client.delete(f"/api/v1/admin/items/{item.id}", headers=admin)).status_code == 204
    again = await client.delete(f"/api/v1/admin/items/{item.id}", headers=admin)
    assert again.status_code == 404
