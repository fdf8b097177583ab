"""Benchmark: the dev stack with one embedder and one search replica against N and M
(`make run EMBEDDERS=N SEARCH=M`), side by side in one run, each on a fresh stack.

Per stack: photo-like 640x480 JPEGs imported through catalog's ImportItems, timed until
search holds a vector for every one (indexing throughput), with each embedder's share of
the jobs and the check that none was done twice (completed jobs = photos = results in
EMBED_RESULTS); then searches by fingerprint through the gateway from several clients
(throughput, p50/p99) with each search replica's share.

    make bench-scale          # = .venv/bin/python bench/scale_out.py
    .venv/bin/python bench/scale_out.py --embedders 2 --search 2 --photos 300 --clients 16

The model is the one `make run` exported in .data/models (exported on first use)."""

import argparse
import asyncio
import io
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import grpc
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from import_images import photo, stream_messages  # noqa: E402

from photosearch.catalog.v1 import catalog_pb2, catalog_pb2_grpc  # noqa: E402
from photosearch.common import subjects  # noqa: E402
from photosearch_devstack.mesh import Mesh  # noqa: E402
from tests.support.mesh_state import catalog_image_ids, stored_vector  # noqa: E402
from tests.support.metrics import Scrape  # noqa: E402


def counter(mesh: Mesh, name: str, metric: str, **labels: str) -> float:
    return Scrape(httpx.get(mesh.metrics_url(name), timeout=5).text).total(metric, **labels)


def index(http: httpx.Client, admin: dict[str, str]) -> dict:
    reply = http.get("/api/v1/admin/index", headers=admin)
    reply.raise_for_status()
    return reply.json()


def run_stack(args: argparse.Namespace, embedders: int, search: int, data: list[bytes]) -> dict:
    models = str(args.models)
    env = {"EMBED_MODEL_CACHE_DIR": models, "GATEWAY_MODEL_DIR": models,
           "GATEWAY_SEARCH_RATE_PER_MINUTE": "0"}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        mesh = Mesh(Path(tmp), extra_env=env, replicas={"embedder": embedders, "search": search})
        mesh.start(timeout=600)
        try:
            return measure(args, mesh, data)
        finally:
            mesh.stop()


def measure(args: argparse.Namespace, mesh: Mesh, data: list[bytes]) -> dict:
    admin = mesh.admin_auth
    out: dict = {"load_before": os.getloadavg()[0]}
    with httpx.Client(base_url=mesh.gateway_url, timeout=30) as http:
        http.put("/api/v1/admin/settings", headers=admin, json={"photo_search_enabled": True})
        deadline = time.monotonic() + 120
        while len(index(http, admin)["workers"]) < len(mesh.replicas_of("embedder")):
            if time.monotonic() > deadline:
                raise TimeoutError("not every embedder is listed")
            time.sleep(0.5)

        def records():
            for n, jpeg in enumerate(data):
                yield catalog_pb2.ImportRecord(
                    import_key=f"scale:{n}",
                    item=catalog_pb2.Item(name=f"Scale {n:04d}"),
                    images=[catalog_pb2.ImportImage(data=jpeg, filename=f"{n}.jpg")],
                )

        started = time.perf_counter()
        with grpc.insecure_channel(mesh.address("catalog")) as channel:
            catalog_pb2_grpc.CatalogServiceStub(channel).ImportItems(records(), timeout=600)
        while True:
            status = index(http, admin)
            if status["embedded"] >= len(data) and status["pending"] == 0:
                break
            time.sleep(0.25)
        out["index_s"] = time.perf_counter() - started
        out["shares"] = [
            counter(mesh, name, "embedder_jobs_total", outcome="completed")
            for name in mesh.replicas_of("embedder")
        ]
        assert mesh.nats
        out["results"] = asyncio.run(stream_messages(mesh.nats.url, subjects.EMBED_RESULTS_STREAM))
        model_id = status["model_id"]
        out["vector"] = stored_vector(mesh, model_id, min(catalog_image_ids(mesh)))
        before = [
            counter(mesh, name, "grpc_server_handled_total", grpc_method="Search")
            for name in mesh.replicas_of("search")
        ]
        out.update(search_load(mesh.gateway_url, model_id, out["vector"], args))
        out["search_shares"] = [
            counter(mesh, name, "grpc_server_handled_total", grpc_method="Search") - b
            for name, b in zip(mesh.replicas_of("search"), before, strict=True)
        ]
    out["load_after"] = os.getloadavg()[0]
    return out


def search_load(url: str, model_id: str, vector: list[float], args) -> dict:
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    stop = time.monotonic() + args.seconds

    def client() -> None:
        nonlocal errors
        with httpx.Client(base_url=url, timeout=30) as http:
            while time.monotonic() < stop:
                t = time.perf_counter()
                reply = http.post("/api/v1/search", json={"model_id": model_id, "vector": vector})
                with lock:
                    latencies.append(time.perf_counter() - t)
                    errors += reply.status_code != 200

    threads = [threading.Thread(target=client) for _ in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    latencies.sort()
    return {
        "rps": len(latencies) / args.seconds,
        "p50": statistics.median(latencies) * 1000,
        "p99": latencies[int(0.99 * (len(latencies) - 1))] * 1000,
        "errors": errors,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--embedders", type=int, default=2)
    parser.add_argument("--search", type=int, default=2)
    parser.add_argument("--photos", type=int, default=200)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--models", type=Path, default=ROOT / ".data" / "models")
    args = parser.parse_args()
    data = [_jpeg(n) for n in range(args.photos)]
    rows = []
    for embedders, search in ((1, 1), (args.embedders, args.search)):
        result = run_stack(args, embedders, search, data)
        rows.append((embedders, search, result))
    print(f"{args.photos} photos 640x480, {args.clients} search clients for {args.seconds:.0f} s")
    print("\n| embedders | search | load | indexing img/s | jobs per embedder | results "
          "| search req/s | p50 ms | p99 ms | errors | searches per replica |")  # fmt: skip
    print("|---:|---:|---|---:|---|---:|---:|---:|---:|---:|---|")
    for embedders, search, r in rows:
        shares = " / ".join(f"{s:.0f}" for s in r["shares"])
        served = " / ".join(f"{s:.0f}" for s in r["search_shares"])
        print(
            f"| {embedders} | {search} | {r['load_before']:.1f} to {r['load_after']:.1f} | "
            f"{args.photos / r['index_s']:.1f} | {shares} | {r['results']} | {r['rps']:.0f} | "
            f"{r['p50']:.1f} | {r['p99']:.1f} | {r['errors']} | {served} |"
        )
    doubled = [
        r for _, _, r in rows if r["results"] != args.photos or sum(r["shares"]) != args.photos
    ]
    print(f"\nno double work: {'yes' if not doubled else 'NO'} (results = jobs completed = photos)")
    return 0 if not doubled else 1


def _jpeg(n: int) -> bytes:
    out = io.BytesIO()
    photo(n).save(out, "JPEG", quality=88)
    return out.getvalue()


if __name__ == "__main__":
    sys.exit(main())
