"""Model files, onnxruntime-web's files and the rate limiter."""

import re

import httpx

from photosearch.common.subjects import model_key
from photosearch_gateway.ratelimit import RateLimiter
from tests.unit.gateway.fakes import MODEL


async def test_model_files_are_served_only_from_the_manifest(client: httpx.AsyncClient) -> None:
    key = model_key(MODEL)
    assert (await client.get(f"/models/{key}/preprocess.json")).json()["version"] == 1
    unversioned = await client.get(f"/models/{key}/model.onnx")
    assert unversioned.status_code == 200 and unversioned.headers["cache-control"] == "no-cache"
    stale = await client.get(f"/models/{key}/model.onnx", params={"v": "0000"})
    assert stale.headers["cache-control"] == "no-cache"
    for path in (
        f"/models/{key}/manifest.json.tmp",
        f"/models/{key}/..%2Fmanifest.json",
        "/models/..%2F..%2Fetc/passwd",
        "/models/nope/model.onnx",
    ):
        assert (await client.get(path)).status_code == 404, path


async def test_only_the_wasm_and_webgpu_runtime_files_are_served(client: httpx.AsyncClient) -> None:
    for name in ("ort.node.min.mjs", "ort.all.min.mjs", "ort-wasm-simd-threaded.jsep.wasm"):
        assert (await client.get(f"/vendor/ort/{name}")).status_code == 404, name
    assert (await client.get("/vendor/ort/..%2Fpackage.json")).status_code == 404
    for name in ("ort-wasm-simd-threaded.wasm", "ort-wasm-simd-threaded.asyncify.wasm"):
        wasm = await client.get(f"/vendor/ort/{name}")
        assert wasm.status_code == 200 and wasm.headers["content-type"] == "application/wasm"
        assert wasm.headers["cross-origin-embedder-policy"] == "require-corp"
    for name in ("ort.wasm.min.mjs", "ort.webgpu.min.mjs", "ort-wasm-simd-threaded.asyncify.mjs"):
        module = await client.get(f"/vendor/ort/{name}")
        assert module.status_code == 200 and module.headers["content-type"].startswith(
            "text/javascript"
        ), name


def test_token_bucket_allows_a_burst_then_the_sustained_rate() -> None:
    limiter = RateLimiter(rate_per_minute=60, burst=2, max_clients=2)
    assert limiter.acquire("a") == 0 and limiter.acquire("a") == 0
    wait = limiter.acquire("a")
    assert 0 < wait <= 1.0
    assert limiter.acquire("b") == 0  # clients are counted apart
    limiter.acquire("c")  # a third client evicts the longest idle one
    assert len(limiter._buckets) == 2
    assert RateLimiter(0, 1).acquire("x") == 0  # 0 = no limit


async def test_api_docs_are_served_by_the_gateway_with_method_like_operation_ids(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/docs")
    assert page.status_code == 200 and "/vendor/swagger/swagger-ui-bundle.js" in page.text
    assert "cdn" not in page.text.lower() and "<script>" not in page.text  # CSP: files only
    for name, media in (
        ("swagger-ui-bundle.js", "text/javascript"),
        ("swagger-ui.css", "text/css"),
    ):
        served = await client.get(f"/vendor/swagger/{name}")
        assert served.status_code == 200 and served.headers["content-type"].startswith(media)
    assert (await client.get("/vendor/swagger/index.html")).status_code == 404
    assert (await client.get("/vendor/swagger/..%2Fpackage.json")).status_code == 404
    ids = [
        op["operationId"]
        for path in (await client.get("/openapi.json")).json()["paths"].values()
        for op in path.values()
    ]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"[a-z]+(?:[A-Z][a-z]*)*", i) for i in ids), ids
    assert {"searchByFingerprint", "listItems", "getThumbnail", "rebuildIndex"} <= set(ids)
