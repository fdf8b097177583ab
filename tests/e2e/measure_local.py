"""Measure the page's local pass next to its fingerprint pass in headless Chromium, its time
from photo to first and to final results with the turned views sent when search asks versus
always, and the size of the search request with and without local descriptors (not a test:
numbers go to docs/benchmarks/gateway.md).

    .venv/bin/python -m tests.e2e.measure_local --model-cache DIR [--photos 12] [--compare first]
    .venv/bin/python -m tests.e2e.measure_local --parse-cost

Starts the whole mesh with the model exported in DIR (the ModelFiles layout, with
local.onnx), turns photo search on, enters the covers that the chosen phone photos of
smvs_dvd_covers show, then picks each photo twice in one page, once per flow (the order
alternating from photo to photo): "when asked" (the page's: the view as taken alone, the turned
views in a second search only when the answer says turned_views_wanted) and "always" (all three
views in one search, as the page did before); with `--compare first`, "fingerprint first" (the
page's: the fingerprint's answer shown while the regions are computed) against "regions first"
(one search once the regions are computed); with `--compare backend`, the models in wasm
against WebGPU, a page each, in a Chromium with WebGPU on (here its adapter is SwiftShader's,
on the CPU). It reads what the page recorded
(`window.photosearch.timings`, `lastQuery`, `lastResult`). The first photo warms up (session
creation, first run) and is left out."""

import argparse
import base64
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from photosearch.common.model_files import ModelFiles
from photosearch_devstack.mesh import Mesh
from photosearch_gateway.local_query import local_messages
from photosearch_gateway.schemas import SearchQuery
from tests.e2e import browser
from tests.e2e.photos import DVD, dvd_reference
from tests.e2e.test_browser import open_page, pick

# The page's options per flow, two flows per comparison (--compare).
FLOW_OPTIONS: dict[str, dict[str, Any]] = {
    "when asked": {"turnedViews": "when asked", "fingerprintFirst": True},
    "always": {"turnedViews": "always", "fingerprintFirst": True},
    "fingerprint first": {"turnedViews": "when asked", "fingerprintFirst": True},
    "regions first": {"turnedViews": "when asked", "fingerprintFirst": False},
    "worker": {"workerInference": True},
    "page thread": {"workerInference": False},
    "wasm": {"backend": "wasm"},
    "webgpu": {"backend": "webgpu"},
}
COMPARISONS = {
    "turned": ("when asked", "always"),
    "first": ("fingerprint first", "regions first"),
    "worker": ("worker", "page thread"),
    "backend": ("wasm", "webgpu"),
}
# Comparisons whose option takes effect when a page loads the runtime: a page per flow.
PER_PAGE = ("worker", "backend")
# The browser's flags per comparison: WebGPU is off in headless Chromium unless asked for.
BROWSER_FLAGS = {"backend": ["--enable-unsafe-webgpu"]}
# Every main-thread task over 50 ms (the browser's long tasks) since the last pick.
WATCH_LONG_TASKS = """
window.__longTasks = [];
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) window.__longTasks.push(entry.duration);
}).observe({ type: "longtask" });
"""


def enter_covers(mesh: Mesh, numbers: list[int]) -> None:
    admin = mesh.admin_auth
    count = len(numbers)
    with httpx.Client(base_url=mesh.gateway_url, timeout=30, headers=mesh.admin_auth) as http:
        on = {"photo_search_enabled": True}
        assert http.put("/api/v1/admin/settings", headers=admin, json=on).status_code == 200
        for number in numbers:
            item = http.post("/api/v1/items", json={"name": f"Cover {number:03d}"}).json()
            path = dvd_reference(number)
            photo = {"photo": (path.name, path.read_bytes(), "image/jpeg")}
            http.post(f"/api/v1/items/{item['id']}/images", files=photo).raise_for_status()

        def embedded() -> bool:
            status = http.get("/api/v1/admin/index", headers=admin).json()
            return bool(status["embedded"] == count and status["pending"] == 0)

        browser.wait_for(embedded, timeout=300, what="the covers to be embedded")


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "p50": round(statistics.median(ordered), 1),
        "p90": round(ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))], 1),
        "n": len(ordered),
    }


def flow_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    views = [ms for row in rows for ms in row.get("local_ms", [])]
    return {
        "first_results_ms": summary([r["first_results_ms"] for r in rows]),
        "final_results_ms": summary([r["final_results_ms"] for r in rows]),
        "local_views_per_photo": round(len(views) / len(rows), 2),
        "local_ms_per_photo": summary([sum(r.get("local_ms", [])) for r in rows]),
        "searched_again": sum(bool(r["turned_views"]) for r in rows),
        "longest_task_ms": summary([r["longest_task_ms"] for r in rows]),
        "long_tasks_ms_per_photo": summary([r["long_tasks_ms"] for r in rows]),
        # Photos whose final answer has a candidate verified with 15 inliers or more.
        "verified_well": sum(r["best_inliers"] >= 15 for r in rows),
        "photos": len(rows),
        "backends": sorted({r["backend"]["backend"] for r in rows if r["backend"]}),
    }


def pick_all(
    driver: Any, photos: list[Path], flows: tuple[str, ...], copies: Path, rows: list[Any]
) -> None:
    """Each photo once per flow in this page, the order alternating; a row per pick."""
    searches = 0
    for number, path in enumerate(photos):
        for flow in flows if number % 2 == 0 else flows[::-1]:
            # A file of its own per pick: picking the same file again is no change.
            copy = copies / flow.replace(" ", "_") / f"{number:02d}_{path.name}"
            copy.parent.mkdir(parents=True, exist_ok=True)
            copy.write_bytes(path.read_bytes())
            driver.execute_script(
                "Object.assign(window.photosearch.options, arguments[0]); window.__longTasks = [];",
                FLOW_OPTIONS[flow],
            )
            searches += 1
            pick(driver, copy, searches=searches)
            rows.append(page_row(driver, path, flow, number))


def measure(
    model: ModelFiles,
    photos: list[Path],
    flows: tuple[str, str] = COMPARISONS["turned"],
    per_page: bool = False,
    flags: list[str] | None = None,
) -> dict[str, Any]:
    extra = {
        "EMBED_MODEL": str(model.directory),
        "GATEWAY_MODEL_DIR": str(model.directory.parent),
        "GATEWAY_SEARCH_RATE_PER_MINUTE": "0",
    }
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="measure-local-") as folder:
        copies = Path(folder) / "photos"
        with Mesh(Path(folder) / "data", extra_env=extra) as mesh:
            enter_covers(mesh, sorted({int(path.stem) for path in photos}))
            with browser.chromium(flags or []) as driver:
                for page_flows in [(f,) for f in flows] if per_page else [flows]:
                    open_page(driver, mesh)
                    driver.execute_script(WATCH_LONG_TASKS)
                    isolated = driver.execute_script("return self.crossOriginIsolated")
                    threads = driver.execute_script("return navigator.hardwareConcurrency")
                    pick_all(driver, photos, page_flows, copies, rows)
    measured = [row for row in rows if row["index"] > 0]  # the first photo warms up

    by_flow = {flow: [r for r in measured if r["flow"] == flow] for flow in flows}
    one, other = (by_flow[flow] for flow in flows)
    view_times = [ms for row in measured for ms in row.get("local_ms", [])]
    view_runs = [ms for row in measured for ms in row.get("local_run_ms", [])]
    return {
        "model_id": model.model_id,
        "local": model.preprocess().get("local"),
        "cross_origin_isolated": isolated,
        "hardware_concurrency": threads,
        "fingerprint_ms": summary([r["fingerprint_ms"] for r in measured]),
        "fingerprint_run_ms": summary([r["fingerprint_run_ms"] for r in measured]),
        "local_view_ms": summary(view_times) if view_times else None,
        "local_view_run_ms": summary(view_runs) if view_runs else None,
        "flows": {flow: flow_summary(by_flow[flow]) for flow in flows},
        # Same photo, both flows: did the page end on the same top item?
        "same_top_item": sum(
            a["top_item"] == b["top_item"] for a, b in zip(one, other, strict=True)
        ),
        "request_bytes": {
            flow: summary([r["request_bytes"] for r in by_flow[flow]]) for flow in flows
        },
        "request_bytes_fingerprint_only": summary(
            [r["request_bytes_fingerprint_only"] for r in measured]
        ),
        "reranked": sum(bool(r["reranked"]) for r in measured),
        "photos": rows,
    }


def page_row(driver: Any, path: Path, flow: str, index: int) -> dict[str, Any]:
    timings = driver.execute_script("return window.photosearch.timings")
    query = driver.execute_script("return window.photosearch.lastQuery")
    result = driver.execute_script("return window.photosearch.lastResult")
    plain = {k: v for k, v in query.items() if k != "local"}
    long_tasks = driver.execute_script("return window.__longTasks ?? []")
    backend = driver.execute_script("return window.photosearch.backend")
    return {
        "photo": f"{path.parent.name}/{path.name}",
        "flow": flow,
        "index": index,
        **timings,
        # The page's thread, blocked: its longest task and all its long tasks (over 50 ms).
        "longest_task_ms": max(long_tasks, default=0.0),
        "long_tasks_ms": sum(long_tasks),
        "best_inliers": max((c["inliers"] for c in result["candidates"]), default=0),
        "grids": [[v["rows"], v["cols"]] for v in query.get("local", [])],
        "request_bytes": len(json.dumps(query)),
        "request_bytes_fingerprint_only": len(json.dumps(plain)),
        "reranked": result["reranked"],
        "top_item": result["candidates"][0]["item"]["id"] if result["candidates"] else None,
        "backend": backend,  # where the models ran ({backend, adapter, reason})
    }


def gateway_parse_cost(rounds: int = 300) -> dict[str, float]:
    """The gateway's CPU for reading a search body (pydantic-core from the bytes) and, with
    local descriptors, decoding and checking them: a 1792-d fingerprint and three views of
    22 x 28 / 28 x 22 cells of 64-d codes, as the page sends for a 640 x 480 photo."""
    rng = np.random.default_rng(0)
    views = [
        {
            "rows": rows,
            "cols": cols,
            "dim": 64,
            "codes": base64.b64encode(
                rng.integers(-127, 128, rows * cols * 64, dtype=np.int8).tobytes()
            ).decode(),
        }
        for rows, cols in ((22, 28), (28, 22), (28, 22))
    ]
    plain = {"model_id": "m", "vector": (rng.normal(size=1792) / 42).tolist(), "k": 10}
    bodies = {"fingerprint_only": plain, "with_local": {**plain, "local": views}}
    out: dict[str, float] = {}
    for name, body in bodies.items():
        data = json.dumps(body).encode()
        times = []
        for _ in range(rounds):
            started = time.perf_counter()
            query = SearchQuery.model_validate_json(data)
            local_messages(query.local, 64)
            times.append((time.perf_counter() - started) * 1000)
        out[f"{name}_bytes"] = len(data)
        out[f"{name}_ms_p50"] = round(statistics.median(times), 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-cache", type=Path)
    parser.add_argument("--model-id", default="")
    parser.add_argument("--photos", type=int, default=12)
    parser.add_argument(
        "--compare",
        choices=sorted(COMPARISONS),
        default="turned",
        help="turned: turned views when asked vs always; first: the fingerprint's answer "
        "shown first vs waiting for the regions; worker: the models in a worker vs on the "
        "page's thread (a page each); backend: wasm vs WebGPU (a page each, Chromium's "
        "WebGPU on)",
    )
    parser.add_argument("--parse-cost", action="store_true", help="only the gateway's parsing")
    args = parser.parse_args()
    if args.parse_cost:
        print(json.dumps(gateway_parse_cost(), indent=1))
        return
    assert args.model_cache, "--model-cache is needed"
    manifests = sorted(args.model_cache.glob("*/manifest.json"))
    model_id = args.model_id or json.loads(manifests[0].read_text())["model_id"]
    model = ModelFiles.load(args.model_cache, model_id)
    assert model is not None, f"no export of {model_id} in {args.model_cache}"
    phone = sorted((DVD / "query").rglob("*.jpg"))
    step = max(1, len(phone) // args.photos)
    flows = COMPARISONS[args.compare]
    photos = phone[::step][: args.photos]
    flags = BROWSER_FLAGS.get(args.compare)
    report = measure(model, photos, flows, args.compare in PER_PAGE, flags)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
