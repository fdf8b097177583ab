"""Bad input against the running mesh (real processes): hostile and unusual images on
every path that takes a photo (catalog through the gateway, the embedder's Embed, the
fallback's WebDetect, the web lookup through the gateway), broken fingerprints, filters
full of SQL metacharacters, unknown fields, photos sent to search. Every refusal is a
clear 4xx / INVALID_ARGUMENT saying what is wrong; every service keeps running."""

import json
from collections.abc import Callable
from typing import Any

import grpc
import numpy as np
import pytest

from photosearch.embedder.v1 import embedder_pb2, embedder_pb2_grpc
from photosearch.fallback.v1 import fallback_pb2, fallback_pb2_grpc
from photosearch_devstack.mesh import Mesh
from tests.integration.security.images import ACCEPTED, REFUSED
from tests.support.fake_vision import RICH_WEB_DETECTION, FakeVision, Reply
from tests.support.mesh import assert_same_processes, service_pids
from tests.support.mesh_api import Api, Seed, settle
from tests.support.mesh_state import stored_vector
from tests.support.security import new_client

pytestmark = pytest.mark.slow
Refused = dict[str, tuple[bytes, str]]


@pytest.fixture(scope="module")
def refused() -> Refused:
    return {name: (make(), words) for name, (make, words) in REFUSED.items()}


@pytest.fixture(scope="module")
def accepted() -> dict[str, bytes]:
    return {name: make() for name, make in ACCEPTED.items()}


@pytest.fixture(scope="module")
def pids(mesh: Mesh, seed: Seed) -> dict[str, int]:
    """The processes as the module found them: every test ends with the same ones."""
    return service_pids(mesh)


def filename(name: str) -> str:
    """Each file named as its disguise says (an HTML page called .jpg, ...)."""
    return {"html-named-jpg": "photo.jpg", "svg-named-png": "photo.png"}.get(name, f"{name}.jpg")


def assert_clear_400(reply: Any, words: str) -> None:
    assert reply.status_code == 400, (reply.status_code, reply.text)
    error = reply.json()["error"]
    assert error["code"] == "invalid_argument", error
    assert words in error["message"], error


def test_uploads_through_the_gateway(
    mesh: Mesh, api: Api, refused: Refused, accepted: dict[str, bytes], pids: dict[str, int]
) -> None:
    item_id = api.create_item("Fuzzed uploads")
    for name, (data, words) in refused.items():
        assert_clear_400(api.add_photo(item_id, data, filename(name)), words)
    added = {}
    for name, data in accepted.items():
        reply = api.add_photo(item_id, data, filename(name))
        assert reply.status_code == 201, (name, reply.text)
        added[name] = reply.json()["image"]
    for name, image in added.items():
        thumbnail = api.http.get(image["thumbnail_url"])
        assert thumbnail.status_code == 200, (name, thumbnail.text)
        assert thumbnail.headers["content-type"] == "image/jpeg"
    assert added["exif-rotated-jpeg"]["width"] == 240  # upright: 240 wide, 320 high
    listed = api.http.get(f"/api/v1/items/{item_id}/images").json()["images"]
    assert len(listed) == len(accepted)  # nothing refused was stored
    settle(api)  # the embedder took every accepted encoding: no failure
    assert_same_processes(mesh, pids)


def assert_refused_as_invalid(call: Callable[[bytes], object], refused: Refused) -> None:
    """Every refused image gets INVALID_ARGUMENT with the words that explain why."""
    for name, (data, words) in refused.items():
        with pytest.raises(grpc.RpcError) as error:
            call(data)
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT, name
        assert words in (error.value.details() or ""), (name, error.value.details())


def test_the_embedders_embed_rpc(
    mesh: Mesh, refused: Refused, accepted: dict[str, bytes], pids: dict[str, int]
) -> None:
    with grpc.insecure_channel(mesh.address("embedder")) as channel:
        stub = embedder_pb2_grpc.EmbedderServiceStub(channel)
        assert_refused_as_invalid(
            lambda data: stub.Embed(embedder_pb2.EmbedRequest(image=data), timeout=30), refused
        )
        for name, data in accepted.items():
            reply = stub.Embed(embedder_pb2.EmbedRequest(image=data), timeout=30)
            vector = np.asarray(reply.embeddings[0].values)
            assert vector.shape == (reply.dim,) and np.all(np.isfinite(vector)), name
            assert abs(np.linalg.norm(vector) - 1.0) < 1e-3, name
        mixed = [d for d, _ in refused.values()] + list(accepted.values())
        requests = [embedder_pb2.EmbedRequest(image=d, ref=str(n)) for n, d in enumerate(mixed)]
        replies = list(stub.EmbedStream(iter(requests), timeout=120))
    assert [r.ref for r in replies] == [str(n) for n in range(len(mixed))]
    assert [bool(r.error) for r in replies] == [True] * len(refused) + [False] * len(accepted)
    assert_same_processes(mesh, pids)


def test_the_fallbacks_web_detect_rpc(
    mesh: Mesh,
    seed: Seed,
    vision: FakeVision,
    refused: Refused,
    accepted: dict[str, bytes],
    pids: dict[str, int],
) -> None:
    vision.reset()
    vision.set_default(Reply.web_detection(RICH_WEB_DETECTION))
    with grpc.insecure_channel(mesh.address("fallback")) as channel:
        stub = fallback_pb2_grpc.FallbackServiceStub(channel)
        assert_refused_as_invalid(
            lambda data: stub.WebDetect(fallback_pb2.WebDetectRequest(image=data), timeout=30),
            refused,
        )
        assert vision.requests == []  # none of them left the premises
        for name, data in accepted.items():
            reply = stub.WebDetect(fallback_pb2.WebDetectRequest(image=data), timeout=30)
            assert list(reply.best_guess_labels) == ["boba fett kenner 1979"], name
    sent = vision.requests
    assert len(sent) == len(accepted)
    for request in sent:  # what went out is a plain JPEG of the photo, nothing else
        (image,) = request.images
        assert image[:3] == b"\xff\xd8\xff"
    assert_same_processes(mesh, pids)


def test_the_web_lookup_through_the_gateway(
    mesh: Mesh, api: Api, vision: FakeVision, refused: Refused, pids: dict[str, int]
) -> None:
    vision.reset()
    for name, (data, words) in refused.items():
        files = {"photo": (filename(name), data, "image/jpeg")}
        reply = api.http.post("/api/v1/fallback/web", files=files, headers=new_client())
        assert_clear_400(reply, words)
    assert vision.requests == []
    assert_same_processes(mesh, pids)


def fingerprint_bodies(seed: Seed, dim: int) -> list[tuple[str, bytes, str]]:
    good = f'"model_id": "{seed.model_id}"'
    ones = ", ".join(["0.5"] * (dim - 1))
    return [
        ("too short", f'{{{good}, "vector": [1, 0, 0]}}'.encode(), "wrong_dimension"),
        ("too long", f'{{{good}, "vector": [{ones}, 1, 1]}}'.encode(), "wrong_dimension"),
        ("NaN", f'{{{good}, "vector": [NaN, {ones}]}}'.encode(), "invalid_argument"),
        ("Infinity", f'{{{good}, "vector": [Infinity, {ones}]}}'.encode(), "invalid_argument"),
        ("-Infinity", f'{{{good}, "vector": [-Infinity, {ones}]}}'.encode(), "invalid_argument"),
        ("huge", f'{{{good}, "vector": [1e308, {ones}]}}'.encode(), "invalid_argument"),
        ("overflow", f'{{{good}, "vector": [1e999, {ones}]}}'.encode(), "invalid_argument"),
        ("all zeros", json.dumps({"model_id": seed.model_id, "vector": [0.0] * dim}).encode(),
         "invalid_argument"),
        ("empty", f'{{{good}, "vector": []}}'.encode(), "invalid_argument"),
        ("words", f'{{{good}, "vector": ["half", {ones}]}}'.encode(), "invalid_argument"),
        ("nested", f'{{{good}, "vector": [[0.5], {ones}]}}'.encode(), "invalid_argument"),
        ("no model", f'{{"vector": [1, {ones}]}}'.encode(), "invalid_argument"),
        ("other model", f'{{"model_id": "x/y@1", "vector": [1, {ones}]}}'.encode(),
         "model_mismatch"),
        ("k = 0", f'{{{good}, "vector": [1, {ones}], "k": 0}}'.encode(), "invalid_argument"),
        ("k = 10^9", f'{{{good}, "vector": [1, {ones}], "k": 1000000000}}'.encode(),
         "invalid_argument"),
        ("min_score 2", f'{{{good}, "vector": [1, {ones}], "min_score": 2}}'.encode(),
         "invalid_argument"),
        ("not json", b"{model_id: x, vector: [1, 2", "invalid_argument"),
        ("a list", b"[1, 2, 3]", "invalid_argument"),
        ("empty body", b"", "invalid_argument"),
    ]  # fmt: skip


def test_broken_fingerprints_get_a_clear_400(
    mesh: Mesh, api: Api, seed: Seed, pids: dict[str, int]
) -> None:
    dim = len(stored_vector(mesh, seed.model_id, seed.items[0][1]))
    for name, body, code in fingerprint_bodies(seed, dim):
        reply = api.http.post(
            "/api/v1/search",
            content=body,
            headers={"content-type": "application/json", **new_client()},
        )
        assert reply.status_code == 400, (name, reply.text)
        error = reply.json()["error"]
        assert error["code"] == code and error["message"], (name, error)
    assert_same_processes(mesh, pids)


def test_search_never_takes_a_photo(api: Api, accepted: dict[str, bytes]) -> None:
    photo = accepted["greyscale-jpeg"]
    as_form = api.http.post(
        "/api/v1/search", files={"photo": ("p.jpg", photo, "image/jpeg")}, headers=new_client()
    )
    as_body = api.http.post(
        "/api/v1/search", content=photo, headers={"content-type": "image/jpeg", **new_client()}
    )
    for reply in (as_form, as_body):
        assert reply.status_code == 415, reply.text
        assert "never takes a photo" in reply.json()["error"]["message"]


METACHARACTERS = [
    "'; DROP TABLE items; --",
    "' OR '1'='1",
    '" OR ""="',
    "%",
    "_",
    "\\",
    "*/ SELECT 1 /*",
    "$1",
    "); DELETE FROM vectors_1; --",
    "🙂' UNION SELECT image_id FROM deleted_images --",
]


def test_filters_full_of_sql_metacharacters_match_literally(
    mesh: Mesh, api: Api, seed: Seed
) -> None:
    tricky = api.create_item(
        "100% _real_ O'Brien \\ figure", series="a'b; --", maker="x%y", tags=["it's"]
    )
    added = api.add_photo(tricky, stored_photo(api, seed))
    assert added.status_code == 201, added.text
    settle(api)
    before = api.http.get("/api/v1/items", params={"page_size": 200}).json()["items"]

    def names(**filters: str) -> list[str]:
        reply = api.http.get("/api/v1/items", params=filters)
        assert reply.status_code == 200, reply.text
        return [item["name"] for item in reply.json()["items"]]

    tricky_name = "100% _real_ O'Brien \\ figure"
    for text in ("%", "_", "\\", "O'Brien", "100% _"):
        assert names(query=text) == [tricky_name], text
    assert names(series="a'b; --") == [tricky_name]
    assert names(maker="x%y") == [tricky_name]
    assert names(tag="it's") == [tricky_name]
    vector = stored_vector(mesh, seed.model_id, added.json()["image"]["id"])
    for text in METACHARACTERS:
        assert names(query=text) == ([tricky_name] if text in ("%", "_", "\\") else []), text
        for field in ("series", "maker", "tag"):
            assert names(**{field: text}) == [], (field, text)
        for field in ("series", "makers", "tags"):
            reply = api.http.post(
                "/api/v1/search",
                json={"model_id": seed.model_id, "vector": vector, "filters": {field: [text]}},
                headers=new_client(),
            )
            assert reply.status_code == 200, (field, text, reply.text)
            assert reply.json()["candidates"] == [], (field, text)
    for field, value in (("series", "a'b; --"), ("makers", "x%y"), ("tags", "it's")):
        reply = api.http.post(
            "/api/v1/search",
            json={"model_id": seed.model_id, "vector": vector, "filters": {field: [value]}},
            headers=new_client(),
        )
        assert [c["item"]["id"] for c in reply.json()["candidates"]] == [tricky], field
    after = api.http.get("/api/v1/items", params={"page_size": 200}).json()["items"]
    assert after == before  # nothing dropped, nothing changed


def stored_photo(api: Api, seed: Seed) -> bytes:
    """The bytes of a seed image, slightly changed so that they are a new image."""
    original = api.http.get(f"/api/v1/images/{seed.items[0][1]}").content
    return original + b"\0"  # JPEG decoders ignore what follows the end marker


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("POST", "/api/v1/items", {"name": "x", "colour": "red"}, "colour"),
        ("POST", "/api/v1/items", {"name": "x", "external_refs": [{"system": "s", "link": "l"}]},
         "link"),
        ("POST", "/api/v1/search", {"vector": [1.0], "model_id": "m", "image": "AAAA"}, "image"),
        ("POST", "/api/v1/search", {"vector": [1.0], "model_id": "m", "filters": {"colour": []}},
         "colour"),
        ("PUT", "/api/v1/admin/settings", {"photo_search": True}, "photo_search"),
        ("POST", "/api/v1/admin/index/rebuild", {"model": "m"}, "model"),
        ("PUT", "/api/v1/admin/models/active", {"model_id": "m", "forced": True}, "forced"),
    ],
)  # fmt: skip
def test_unknown_fields_are_refused_by_name(
    api: Api, seed: Seed, method: str, path: str, body: dict[str, Any], field: str
) -> None:
    headers = {**api.admin, **new_client()} if "/admin/" in path else new_client()
    reply = api.http.request(method, path, json=body, headers=headers)
    assert reply.status_code == 400, reply.text
    error = reply.json()["error"]
    assert error["code"] == "invalid_argument" and field in error["message"], error


NUL = "\u0000"


def test_nul_characters_in_item_fields_are_refused_with_a_400(api: Api) -> None:
    for fields in (
        {"name": f"a{NUL}b"},
        {"name": "ok", "series": f"s{NUL}"},
        {"name": "ok", "maker": f"m{NUL}"},
        {"name": "ok", "tags": [f"t{NUL}"]},
        {"name": "ok", "attributes": {"k": f"v{NUL}"}},
    ):
        reply = api.http.post("/api/v1/items", json=fields, headers=new_client())
        assert reply.status_code == 400, (fields, reply.text)


def test_nul_characters_in_item_filters_are_not_a_server_error(api: Api) -> None:
    for field in ("query", "series", "maker", "tag"):
        reply = api.http.get("/api/v1/items", params={field: f"a{NUL}"})
        assert reply.status_code in (200, 400), (field, reply.text)


def test_nul_characters_in_search_input_are_not_a_server_error(
    mesh: Mesh, api: Api, seed: Seed
) -> None:
    vector = stored_vector(mesh, seed.model_id, seed.items[0][1])
    replies = [
        api.http.post(
            "/api/v1/search",
            json={"model_id": seed.model_id, "vector": vector, "filters": {field: [f"a{NUL}"]}},
            headers=new_client(),
        )
        for field in ("series", "makers", "tags")
    ]
    params = {"model_id": f"a{NUL}"}
    replies.append(api.http.get("/api/v1/admin/index", headers=api.admin, params=params))
    replies.append(api.http.get("/api/v1/admin/duplicates", headers=api.admin, params=params))
    replies.append(api.http.post("/api/v1/admin/index/rebuild", headers=api.admin, json=params))
    assert [r.status_code for r in replies if r.status_code >= 500] == [], [r.text for r in replies]
