"""Soak: a bounded run of mixed traffic through the gateway of the whole mesh (real
processes on loopback): photo searches by fingerprint (each followed by the top
candidate's thumbnail, as the page does) and a steady ingest of new items with photos,
which the embedder fingerprints and search indexes while the searches go on.

Reports, per minute: request count and p50/p99 latency of each kind; the ratio of each
minute's search p99 to the first minute's (must stay within 2x); the RSS of every
service sampled every few seconds, with its least-squares slope; and the error count
(must be zero, and every ingested photo must end up embedded).

    make bench-soak                                   # 10 minutes
    .venv/bin/python bench/soak.py --minutes 3 --searchers 4 --ingest-per-minute 30
"""

import argparse
import asyncio
import io
import json
import random
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np
import psutil
import skimage.data
from PIL import Image

from photosearch.embedder.v1 import embedder_pb2, embedder_pb2_grpc
from photosearch_devstack.mesh import Mesh

REPO = Path(__file__).resolve().parent.parent
SOURCES = ("chelsea", "astronaut", "coffee", "rocket", "coins", "camera", "hubble_deep_field")
SERVICES = ("catalog", "search", "embedder", "fallback", "gateway")


def traffic_arguments(description: str, minutes: float) -> argparse.ArgumentParser:
    """The options of a soak's traffic (also bench/chaos.py's)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--minutes", type=float, default=minutes)
    parser.add_argument("--searchers", type=int, default=4, help="concurrent search clients")
    parser.add_argument("--ingest-per-minute", type=float, default=30.0)
    parser.add_argument("--seed-items", type=int, default=40)
    parser.add_argument("--model", default="efficientnet-lite0")
    parser.add_argument("--model-cache", type=Path, default=REPO / ".data" / "test-models")
    parser.add_argument("--sample-seconds", type=float, default=5.0)
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    return parser


def parse_args() -> argparse.Namespace:
    return traffic_arguments(__doc__.split("\n\n")[0], minutes=10.0).parse_args()


def mesh_env(args: argparse.Namespace) -> dict[str, str]:
    cache = args.model_cache.resolve()
    return {
        "EMBED_MODEL": args.model,
        "EMBED_MODEL_CACHE_DIR": str(cache),
        "GATEWAY_MODEL_DIR": str(cache),
        # One client makes all the traffic: the per-client limits would cut it.
        "GATEWAY_SEARCH_RATE_PER_MINUTE": "0",
    }


class Photos:
    """Distinct camera-sized JPEGs: random crops and colour shifts of sample photos."""

    def __init__(self, seed: int = 1) -> None:
        self.rng = random.Random(seed)
        self.sources = [
            Image.fromarray(np.asarray(getattr(skimage.data, name)())).convert("RGB")
            for name in SOURCES
        ]

    def next(self) -> bytes:
        image = self.rng.choice(self.sources)
        w, h = image.size
        cw, ch = int(w * self.rng.uniform(0.5, 0.9)), int(h * self.rng.uniform(0.5, 0.9))
        x, y = self.rng.randrange(w - cw + 1), self.rng.randrange(h - ch + 1)
        crop = np.asarray(image.crop((x, y, x + cw, y + ch)).resize((640, 480)), dtype=np.int16)
        shifted = np.clip(crop + self.rng.randint(-40, 40), 0, 255).astype(np.uint8)
        out = io.BytesIO()
        Image.fromarray(shifted).save(out, "JPEG", quality=85)
        return out.getvalue()


@dataclass
class Record:
    kind: str
    started: float  # seconds since the soak began
    seconds: float
    status: int  # 0: no answer (a transport error)


@dataclass
class Soak:
    http: httpx.AsyncClient
    model_id: str
    queries: list[list[float]]
    photos: Photos
    began: float = field(default_factory=time.monotonic)
    records: list[Record] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    ingested: int = 0

    async def timed(self, kind: str, method: str, url: str, **kwargs: Any) -> httpx.Response:
        started = time.monotonic()
        try:
            reply = await self.http.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            self.records.append(Record(kind, started - self.began, 0.0, 0))
            self.errors.append(f"{kind}: {type(exc).__name__} {exc}")
            raise
        self.records.append(
            Record(kind, started - self.began, time.monotonic() - started, reply.status_code)
        )
        if reply.status_code >= 400:
            self.errors.append(f"{kind}: HTTP {reply.status_code} {reply.text[:200]}")
        return reply

    def start(self, args: argparse.Namespace) -> tuple[float, list[asyncio.Task[None]]]:
        """The searchers and the ingester, until `args.minutes` from the start."""
        until = self.began + args.minutes * 60
        tasks = [asyncio.create_task(self.searcher(until, n)) for n in range(args.searchers)]
        tasks.append(asyncio.create_task(self.ingester(until, args.ingest_per_minute)))
        return until, tasks

    async def searcher(self, until: float, seed: int) -> None:
        rng = np.random.default_rng(seed)
        while time.monotonic() < until:
            base = np.asarray(self.queries[int(rng.integers(len(self.queries)))])
            query = base + rng.normal(0, 0.02, size=base.shape)  # another photo of it
            body = {"model_id": self.model_id, "vector": query.tolist(), "k": 10}
            try:
                reply = await self.timed("search", "POST", "/api/v1/search", json=body)
                candidates = reply.json().get("candidates", []) if reply.is_success else []
                if candidates:
                    await self.timed("thumbnail", "GET", candidates[0]["thumbnail_url"])
            except httpx.HTTPError:
                await asyncio.sleep(0.5)

    async def ingester(self, until: float, per_minute: float) -> None:
        interval = 60.0 / per_minute
        n = 0
        while time.monotonic() < until:
            tick = time.monotonic()
            n += 1
            photo = await asyncio.to_thread(self.photos.next)
            try:
                item = await self.timed(
                    "ingest", "POST", "/api/v1/items", json={"name": f"Soak {n}"}
                )
                if item.is_success:
                    files = {"photo": (f"soak-{n}.jpg", photo, "image/jpeg")}
                    url = f"/api/v1/items/{item.json()['id']}/images"
                    added = await self.timed("ingest", "POST", url, files=files)
                    self.ingested += int(added.status_code == 201)
            except httpx.HTTPError:
                pass
            await asyncio.sleep(max(0.0, interval - (time.monotonic() - tick)))


def rss_mb(pid: int) -> float:
    try:
        process = psutil.Process(pid)
        total = process.memory_info().rss + sum(
            c.memory_info().rss for c in process.children(recursive=True)
        )
    except psutil.NoSuchProcess:
        return float("nan")
    return float(total) / 2**20


class CpuWatch:
    """CPU used by the mesh (services, Postgres, NATS) and by this client, and by the rest
    of the machine: on a shared machine a slow minute is often someone else's."""

    def __init__(self, mesh: Mesh) -> None:
        self.mesh = mesh
        self.processes: dict[int, psutil.Process] = {}
        psutil.cpu_percent()

    def _roots(self) -> list[int]:
        pids = [process.pid for process in self.mesh.processes.values()]
        if self.mesh.nats and self.mesh.nats.process:
            pids.append(self.mesh.nats.process.pid)
        if self.mesh.postgres and self.mesh.postgres.pid_file.exists():
            pids.append(int(self.mesh.postgres.pid_file.read_text().split()[0]))
        return [*pids, psutil.Process().pid]

    def sample(self) -> tuple[float, float]:
        """(cores used by the mesh and this client, cores used by everything else)."""
        seen = set()
        for root in self._roots():
            try:
                family = [psutil.Process(root), *psutil.Process(root).children(recursive=True)]
            except psutil.NoSuchProcess:
                continue
            for process in family:
                seen.add(process.pid)
                if process.pid not in self.processes:
                    self.processes[process.pid] = process
                    process.cpu_percent()  # the first call only starts the count
        ours = 0.0
        for pid in list(self.processes):
            try:
                ours += self.processes[pid].cpu_percent() / 100 if pid in seen else 0.0
            except psutil.NoSuchProcess:
                pass
            if pid not in seen:
                del self.processes[pid]
        machine = psutil.cpu_percent() / 100 * (psutil.cpu_count() or 1)
        return ours, max(0.0, machine - ours)


async def sample_machine(
    mesh: Mesh, until: float, began: float, every: float
) -> tuple[dict[str, list[tuple[float, float]]], list[tuple[float, float, float]]]:
    """RSS of every service, and (minute, mesh cores, other cores), every `every` s."""
    memory: dict[str, list[tuple[float, float]]] = defaultdict(list)
    cpu: list[tuple[float, float, float]] = []
    watch = CpuWatch(mesh)
    while True:
        now = time.monotonic()
        minute = (now - began) / 60
        for name in SERVICES:
            memory[name].append((minute, rss_mb(mesh.processes[name].pid)))
        ours, others = watch.sample()
        cpu.append((minute, ours, others))
        if now >= until:
            return memory, cpu
        await asyncio.sleep(min(every, max(0.0, until - now)))


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) * 1000 if values else float("nan")


def per_minute(
    records: list[Record], cpu: list[tuple[float, float, float]], minutes: int
) -> list[dict[str, Any]]:
    rows = []
    for minute in range(minutes):
        row: dict[str, Any] = {"minute": minute + 1}
        in_minute = [c for c in cpu if minute <= c[0] < minute + 1]
        row["mesh_cores"] = round(float(np.mean([c[1] for c in in_minute])), 2)
        row["other_cores"] = round(float(np.mean([c[2] for c in in_minute])), 2)
        for kind in ("search", "thumbnail", "ingest"):
            latencies = [
                r.seconds
                for r in records
                if r.kind == kind and minute * 60 <= r.started < (minute + 1) * 60 and r.status
            ]
            row[kind] = {
                "count": len(latencies),
                "p50_ms": round(percentile(latencies, 50), 1),
                "p99_ms": round(percentile(latencies, 99), 1),
            }
        rows.append(row)
    first = rows[0]["search"]["p99_ms"] if rows else float("nan")
    for row in rows:
        row["search_p99_vs_first"] = round(row["search"]["p99_ms"] / first, 2)
    return rows


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares MB per minute."""
    xs = np.asarray([p[0] for p in points])
    ys = np.asarray([p[1] for p in points])
    if len(xs) < 2:
        return float("nan")
    return float(np.polyfit(xs, ys, 1)[0])


async def prepare(
    mesh: Mesh, http: httpx.AsyncClient, seed_items: int
) -> tuple[str, list[list[float]]]:
    """Photo search on, a catalog of seed items embedded; query vectors from the embedder."""
    admin = mesh.admin_auth
    reply = await http.put(
        "/api/v1/admin/settings", headers=admin, json={"photo_search_enabled": True}
    )
    reply.raise_for_status()
    photos = Photos(seed=7)
    seeds = [photos.next() for _ in range(seed_items)]
    for n, photo in enumerate(seeds):
        item = (await http.post("/api/v1/items", json={"name": f"Seed {n}"})).json()
        files = {"photo": (f"seed-{n}.jpg", photo, "image/jpeg")}
        (await http.post(f"/api/v1/items/{item['id']}/images", files=files)).raise_for_status()
    status = await wait_embedded(http, admin, timeout=300)
    channel = grpc.aio.insecure_channel(mesh.address("embedder"))
    stub = embedder_pb2_grpc.EmbedderServiceStub(channel)
    queries = []
    for photo in seeds:
        embedded = await stub.Embed(embedder_pb2.EmbedRequest(image=photo), timeout=60)
        queries.append(list(embedded.embeddings[0].values))
    await channel.close(None)
    return str(status["model_id"]), queries


async def wait_embedded(
    http: httpx.AsyncClient, admin: dict[str, str], timeout: float
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        status: dict[str, Any] = (await http.get("/api/v1/admin/index", headers=admin)).json()
        if (
            status["catalog_images"]
            and status["embedded"] == status["catalog_images"]
            and not status["pending"]
        ):
            return status
        if time.monotonic() > deadline:
            raise TimeoutError(f"not every image embedded after {timeout:.0f} s: {status}")
        await asyncio.sleep(1.0)


async def soak(args: argparse.Namespace, mesh: Mesh) -> dict[str, Any]:
    async with httpx.AsyncClient(
        base_url=mesh.gateway_url, timeout=30, headers=mesh.admin_auth
    ) as http:
        model_id, queries = await prepare(mesh, http, args.seed_items)
        print(f"seeded {args.seed_items} items ({model_id}); soaking {args.minutes} min ...")
        run = Soak(http, model_id, queries, Photos(seed=11))
        until, tasks = run.start(args)
        memory, cpu = await sample_machine(mesh, until, run.began, args.sample_seconds)
        await asyncio.gather(*tasks)
        admin = mesh.admin_auth
        try:
            final = await wait_embedded(http, admin, timeout=120)
        except TimeoutError as exc:
            run.errors.append(str(exc))
            final = (await http.get("/api/v1/admin/index", headers=admin)).json()
    minutes = max(1, int(args.minutes))
    rows = per_minute(run.records, cpu, minutes)
    return {
        "minutes": args.minutes,
        "searchers": args.searchers,
        "ingest_per_minute": args.ingest_per_minute,
        "model_id": model_id,
        "requests": len(run.records),
        "ingested_photos": run.ingested,
        "errors": len(run.errors),
        "first_errors": run.errors[:10],
        "index": {k: final[k] for k in ("catalog_images", "embedded", "pending", "failed")},
        "per_minute": rows,
        "max_search_p99_vs_first": max(r["search_p99_vs_first"] for r in rows),
        "rss_mb": {
            name: {
                "start": round(points[0][1], 1),
                "end": round(points[-1][1], 1),
                "max": round(max(p[1] for p in points), 1),
                "slope_mb_per_min": round(slope(points), 2),
                "slope_after_first_minute": round(slope([p for p in points if p[0] >= 1]), 2),
            }
            for name, points in memory.items()
        },
    }


def report(result: dict[str, Any]) -> str:
    lines = [
        f"soak: {result['minutes']} min, {result['searchers']} searchers, "
        f"{result['ingest_per_minute']:g} photos/min ingested, model {result['model_id']}",
        f"requests {result['requests']}, photos ingested {result['ingested_photos']}, "
        f"errors {result['errors']}, index {result['index']}",
        "",
        "| minute | searches | search p50 ms | search p99 ms | p99 / first | thumbnail p99 ms "
        "| ingests | ingest p99 ms | cores: mesh + client | cores: rest of the machine |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in result["per_minute"]:
        s, t, i = row["search"], row["thumbnail"], row["ingest"]
        lines.append(
            f"| {row['minute']} | {s['count']} | {s['p50_ms']} | {s['p99_ms']} | "
            f"{row['search_p99_vs_first']} | {t['p99_ms']} | {i['count']} | {i['p99_ms']} | "
            f"{row['mesh_cores']} | {row['other_cores']} |"
        )
    lines += ["", "| service | RSS start MB | RSS end MB | max MB | slope MB/min | "
              "slope after minute 1 |", "|---|---:|---:|---:|---:|---:|"]  # fmt: skip
    for name, rss in result["rss_mb"].items():
        lines.append(
            f"| {name} | {rss['start']} | {rss['end']} | {rss['max']} | "
            f"{rss['slope_mb_per_min']} | {rss['slope_after_first_minute']} |"
        )
    return "\n".join(lines)


def main() -> int:
    args = parse_args()
    env = mesh_env(args)
    with tempfile.TemporaryDirectory(prefix="photosearch-soak-") as tmp:
        mesh = Mesh(Path(tmp) / "data", extra_env=env)
        try:
            mesh.start(timeout=600)  # the first start may export the model
            result = asyncio.run(soak(args, mesh))
        finally:
            mesh.stop()
    print(report(result))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))
    passed = result["errors"] == 0 and result["max_search_p99_vs_first"] <= 2.0
    print("PASS" if passed else "FAIL: errors or a minute's p99 over 2x the first minute's")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
