"""The gateway API against the real services, end to end: admin settings, manual entry
with a photo, embedding by the real worker, search by fingerprint, thumbnails, the web
fallback, the duplicates report, the rebuild gate and a dependency going down; local
descriptors passed to search's re-ranking."""

import base64
import io
from pathlib import Path
from typing import Any

import grpc
import pytest
from PIL import Image

from photosearch.common.local import LocalGrid
from photosearch.embedder.v1 import embedder_pb2, embedder_pb2_grpc
from tests.e2e.local_reference import LocalReference
from tests.e2e.photos import COIL, dvd_reference
from tests.integration.gateway.models import MODEL_ID
from tests.support.fake_vision import RICH_WEB_DETECTION, Reply
from tests.support.gateway_stack import VISION_KEY, Stack, eventually

pytestmark = pytest.mark.slow
COVERS = [dvd_reference(n) for n in range(1, 9)]
OTHER_OBJECT = COIL / "obj002__000.png"  # not in the catalog


async def server_fingerprint(stack: Stack, data: bytes) -> list[float]:
    """What the embedder service computes for the same file (the browser's reference)."""
    async with grpc.aio.insecure_channel(stack.services["embedder"].address) as channel:
        stub = embedder_pb2_grpc.EmbedderServiceStub(channel)
        reply = await stub.Embed(embedder_pb2.EmbedRequest(image=data), timeout=60)
    return list(reply.embeddings[0].values)


def rotated_copy(path: Path) -> bytes:
    """The same cover photographed again: re-encoded smaller, slightly turned."""
    image = Image.open(path).convert("RGB").rotate(4, expand=False, fillcolor=(255, 255, 255))
    out = io.BytesIO()
    image.resize((400, 400)).save(out, "JPEG", quality=80)
    return out.getvalue()


async def test_admin_turns_photo_search_on(stack: Stack) -> None:
    http, admin = stack.http, stack.admin
    config = (await http.get("/api/v1/config")).json()
    assert config["photo_search_enabled"] is False  # off by default
    query = {"model_id": MODEL_ID, "vector": [0.1] * 1280}
    assert (await http.post("/api/v1/search", json=query)).status_code == 409
    reply = await http.put(
        "/api/v1/admin/settings", headers=admin, json={"photo_search_enabled": True}
    )
    assert reply.status_code == 200 and reply.json()["photo_search_enabled"] is True


async def test_config_serves_the_embedders_model_to_the_page(stack: Stack) -> None:
    async def model_ready() -> dict:
        reply = await stack.http.get("/api/v1/config")
        assert reply.status_code == 200, reply.text
        config = reply.json()
        assert config["photo_search_available"], config
        return config

    config = await eventually(model_ready)
    model = config["model"]
    assert model["model_id"] == MODEL_ID and model["dim"] == 1280
    assert model["preprocess"]["resize"]["short_side"] == 256
    onnx = await stack.http.get(model["onnx_url"])
    assert onnx.status_code == 200 and len(onnx.content) == model["onnx_bytes"]
    assert "immutable" in onnx.headers["cache-control"]


async def test_manual_entry_then_search_finds_the_item(stack: Stack) -> None:
    http, admin = stack.http, stack.admin
    ids = {}
    for number, path in enumerate(COVERS, start=1):
        created = await http.post(
            "/api/v1/items", json={"name": f"DVD {number:03d}", "series": "Covers"}
        )
        assert created.status_code == 201, created.text
        item_id = created.json()["id"]
        ids[number] = item_id
        added = await http.post(
            f"/api/v1/items/{item_id}/images",
            files={"photo": (path.name, path.read_bytes(), "image/jpeg")},
        )
        assert added.status_code == 201, added.text

    async def all_embedded() -> None:
        status = (await http.get("/api/v1/admin/index", headers=admin)).json()
        assert status["embedded"] == len(COVERS) and status["pending"] == 0, status
        assert status["workers"] and status["rebuild"]["allowed"] is True

    await eventually(all_embedded, timeout=120)
    vector = await server_fingerprint(stack, rotated_copy(COVERS[2]))
    reply = await http.post("/api/v1/search", json={"model_id": MODEL_ID, "vector": vector, "k": 3})
    assert reply.status_code == 200, reply.text
    candidates = reply.json()["candidates"]
    assert candidates[0]["item"]["id"] == ids[3] and candidates[0]["item"]["name"] == "DVD 003"
    assert candidates[0]["score"] > candidates[1]["score"]
    thumb = await http.get(candidates[0]["thumbnail_url"])
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    assert max(Image.open(io.BytesIO(thumb.content)).size) <= 256


async def test_search_rejects_fingerprints_of_another_shape(stack: Stack) -> None:
    http = stack.http
    short = {"model_id": MODEL_ID, "vector": [0.1] * 384}
    wrong_dim = await http.post("/api/v1/search", json=short)
    assert wrong_dim.status_code == 400 and wrong_dim.json()["error"]["code"] == "wrong_dimension"
    other = await http.post("/api/v1/search", json={"model_id": "x/y@1", "vector": [0.1] * 1280})
    assert other.status_code == 400
    assert other.json()["error"]["details"]["expected_model_id"] == MODEL_ID


def local_json(grid: LocalGrid) -> dict[str, object]:
    return {
        "rows": grid.rows,
        "cols": grid.cols,
        "dim": grid.dim,
        "codes": base64.b64encode(grid.codes.tobytes()).decode(),
    }


async def test_search_with_local_descriptors_reranks_by_matched_regions(stack: Stack) -> None:
    """The views the page would send (Pillow + onnxruntime here) pass through the gateway
    to search, which re-ranks by regions matched under one mapping."""
    assert "local" in stack.model.preprocess(), f"{MODEL_ID} was exported without local"
    http = stack.http
    photo = rotated_copy(COVERS[2])
    grids = LocalReference(stack.model).views(photo)
    views = [local_json(g) for g in grids]
    vector = await server_fingerprint(stack, photo)
    query = {"model_id": MODEL_ID, "vector": vector, "k": 3, "local": views}
    reply = await http.post("/api/v1/search", json=query)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["reranked"] is True
    first = body["candidates"][0]
    assert first["item"]["name"] == "DVD 003" and first["inliers"] > 0
    assert first["verified"] is True and first["score"] > first["global_score"]
    assert all(c["verified"] == (c["score"] > c["global_score"]) for c in body["candidates"])
    plain = (await http.post("/api/v1/search", json={**query, "local": []})).json()
    assert plain["reranked"] is False
    assert all(
        c["inliers"] == 0 and c["score"] == c["global_score"] and not c["verified"]
        for c in plain["candidates"]
    )
    # A view of another model's dimension is refused by the gateway, naming the view.
    dim = grids[1].dim
    half = LocalGrid(grids[1].rows, grids[1].cols, grids[1].index, grids[1].codes[:, : dim // 2])
    other = local_json(half)
    refused = await http.post("/api/v1/search", json={**query, "local": [views[0], other]})
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["message"] == f"local[1]: dim must be {dim}, got {dim // 2}"
    assert error["details"]["problems"][0]["field"] == "local.1"


async def test_search_asks_for_turned_views_only_when_the_photo_as_taken_verifies_nothing(
    stack: Stack,
) -> None:
    """The page's two steps against the real search: the photo as taken alone first; the
    turned views only when the answer says turned_views_wanted."""
    http, reference = stack.http, LocalReference(stack.model)

    async def search(photo: bytes, views: int) -> dict[str, Any]:
        local = [local_json(g) for g in reference.views(photo)[:views]]
        vector = await server_fingerprint(stack, photo)
        query = {"model_id": MODEL_ID, "vector": vector, "k": 3, "local": local}
        reply = await http.post("/api/v1/search", json=query)
        assert reply.status_code == 200, reply.text
        body: dict[str, Any] = reply.json()
        assert body["reranked"] is True
        return body

    # A photo of a cover verifies it with the view as taken: no turned views wanted.
    upright = await search(rotated_copy(COVERS[2]), views=1)
    assert upright["turned_views_wanted"] is False
    assert upright["candidates"][0]["item"]["name"] == "DVD 003"
    assert upright["candidates"][0]["inliers"] >= 15
    # A photo of something not in the catalog verifies nothing: search asks for the turns,
    # and with them sent it asks no more.
    elsewhere = OTHER_OBJECT.read_bytes()
    first = await search(elsewhere, views=1)
    assert first["turned_views_wanted"] is True
    assert all(c["inliers"] < 15 for c in first["candidates"])
    final = await search(elsewhere, views=3)
    assert final["turned_views_wanted"] is False
    assert [c["global_score"] for c in final["candidates"]] == [
        c["global_score"] for c in first["candidates"]
    ]
    # Without local descriptors there is nothing to turn.
    vector = await server_fingerprint(stack, elsewhere)
    plain = await http.post("/api/v1/search", json={"model_id": MODEL_ID, "vector": vector})
    assert plain.json()["turned_views_wanted"] is False


async def test_duplicates_report_finds_a_cover_entered_twice(stack: Stack) -> None:
    http, admin = stack.http, stack.admin
    twin = (await http.post("/api/v1/items", json={"name": "DVD 001 again"})).json()
    await http.post(
        f"/api/v1/items/{twin['id']}/images",
        files={"photo": ("copy.jpg", rotated_copy(COVERS[0]), "image/jpeg")},
    )

    async def reported() -> dict:
        report = await http.get("/api/v1/admin/duplicates", headers=admin)
        assert report.status_code == 200, report.text
        names = [
            {p["a"]["item"]["name"], p["b"]["item"]["name"]} for p in report.json()["duplicates"]
        ]
        assert {"DVD 001", "DVD 001 again"} in names, names
        return report.json()

    await eventually(reported, timeout=60)


async def test_web_fallback_with_the_key_that_is_never_shown(stack: Stack) -> None:
    http, admin = stack.http, stack.admin
    photo = {"photo": ("p.jpg", COVERS[0].read_bytes(), "image/jpeg")}
    refused = await http.post("/api/v1/fallback/web", files=photo)
    assert refused.status_code == 409
    update = {"web_fallback_enabled": True, "vision_api_key": VISION_KEY}
    saved = await http.put("/api/v1/admin/settings", headers=admin, json=update)
    assert saved.status_code == 200 and saved.json()["vision_api_key_set"] is True
    stack.vision.set_default(Reply.web_detection(RICH_WEB_DETECTION))
    leads = await http.post("/api/v1/fallback/web", files=photo)
    assert leads.status_code == 200, leads.text
    body = leads.json()
    assert body["entities"] and body["pages"]
    assert all(lead["url"].startswith("https://") for lead in body["full_matching_images"])
    assert stack.vision.requests[-1].api_key == VISION_KEY
    for path in ("/api/v1/admin/settings", "/api/v1/config", "/metrics"):
        assert VISION_KEY not in (await http.get(path, headers=admin)).text
    assert (await http.get("/api/v1/config")).json()["web_fallback_available"] is True


async def test_rebuild_is_refused_once_no_worker_is_online(stack: Stack) -> None:
    http, admin = stack.http, stack.admin

    async def accepted() -> None:
        # The worker's 2-second presence can lapse while the shared test loop is busy.
        reply = await http.post("/api/v1/admin/index/rebuild", headers=admin, json={})
        assert reply.status_code == 202, reply.text

    await eventually(accepted, timeout=30)
    await stack.stop("embedder")

    async def gated() -> None:
        status = (await http.get("/api/v1/admin/index", headers=admin)).json()
        assert status["workers"] == [] and status["rebuild"]["allowed"] is False

    await eventually(gated, timeout=30)
    refused = await http.post("/api/v1/admin/index/rebuild", headers=admin, json={})
    assert refused.status_code == 409
    assert "no embedder worker is online" in refused.json()["error"]["message"]


async def test_a_service_that_goes_down_gives_503_with_retry_after(stack: Stack) -> None:
    await stack.stop("search")
    reply = await stack.http.post(
        "/api/v1/search", json={"model_id": MODEL_ID, "vector": [0.1] * 1280}
    )
    assert reply.status_code == 503 and reply.headers["retry-after"]
    assert "search" in reply.json()["error"]["message"]
    ready = await stack.http.get("/readyz")
    assert ready.status_code == 503 and ready.json()["services"]["search"] != "SERVING"
