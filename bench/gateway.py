"""Benchmark: POST /api/v1/search through the gateway versus calling search's gRPC
Search directly, against 100k clustered 384-d vectors, at 16 and 64 concurrent clients.

The gateway's extra work per request: HTTP + JSON parsing and validation of the
fingerprint, the (cached) settings and active-model checks, and the Search call, whose
answer carries the items' names (search keeps them from catalog's item events; the
benchmark waits until search has heard of every item, so no search needs catalog).
Both sides run in the same process layout (real catalog, search, gateway processes;
embedded Postgres+NATS) and are measured one after the other in the same run, so the
ratio is the overhead.

    make bench-gateway                      # = .venv/bin/python bench/gateway.py
    .venv/bin/python bench/gateway.py --vectors 100000 --seconds 15 --clients 16,64

Reuses the clustered data, bulk load and HNSW build of bench/search.py."""

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path

import grpc
import httpx
import numpy as np
import psutil
import psycopg
from cryptography.fernet import Fernet
from grpc_health.v1 import health_pb2, health_pb2_grpc
from pgvector.psycopg import register_vector

sys.path.insert(0, str(Path(__file__).resolve().parent))
import search as search_bench

from photosearch.catalog.v1 import catalog_pb2, catalog_pb2_grpc
from photosearch.common.db import apply_migrations
from photosearch.search.v1 import search_pb2, search_pb2_grpc
from photosearch_devstack.nats_server import NatsServer
from photosearch_devstack.ports import free_port
from photosearch_devstack.postgres import EmbeddedPostgres
from photosearch_search.config import SearchSettings
from photosearch_search.domain import Model
from photosearch_search.models import (
    ACTIVE_MODEL_KEY,
    IndexParams,
    ann_index_ddl,
    table_ddl,
)

K = 10


def start(
    module: str, env: dict[str, str], log: Path, args: Sequence[str] = ()
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", module, *args],
        env={**os.environ, **env},
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def wait_grpc(address: str, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline and process.poll() is None:
            try:
                reply = health.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.2)
    raise RuntimeError(f"{address} did not become SERVING")


def wait_http(url: str, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer")


async def create_items(catalog: str, count: int) -> list[str]:
    """`count` catalog items (bulk import), returned in import order as catalog ids."""
    async with grpc.aio.insecure_channel(catalog) as channel:
        stub = catalog_pb2_grpc.CatalogServiceStub(channel)  # type: ignore[no-untyped-call]

        async def records() -> AsyncIterator[catalog_pb2.ImportRecord]:
            for n in range(count):
                yield catalog_pb2.ImportRecord(
                    import_key=f"bench-{n}",
                    item=catalog_pb2.Item(name=f"Bench item {n}", series=f"series-{n % 50}"),
                )

        await stub.ImportItems(records(), timeout=600)
        ids: dict[str, str] = {}
        token = ""
        while True:
            page = await stub.ListItems(
                catalog_pb2.ListItemsRequest(page_size=1000, page_token=token), timeout=60
            )
            ids.update({item.import_key: item.id for item in page.items})
            token = page.next_page_token
            if not token:
                break
        await stub.UpdateSettings(
            catalog_pb2.UpdateSettingsRequest(photo_search_enabled=True), timeout=10
        )
    return [ids[f"bench-{n}"] for n in range(count)]


async def drive(
    clients: int, seconds: float, call: Callable[[int], Awaitable[None]]
) -> tuple[float, list[float], int]:
    """Closed loop: each client calls again as soon as its answer arrives."""
    times: list[float] = []
    errors = 0
    stop_at = time.perf_counter() + seconds

    async def client(offset: int) -> None:
        nonlocal errors
        i = offset
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            try:
                await call(i)
                times.append((time.perf_counter() - started) * 1000)
            except Exception:
                errors += 1
            i += clients

    started = time.perf_counter()
    await asyncio.gather(*(client(c) for c in range(clients)))
    return len(times) / (time.perf_counter() - started), times, errors


async def measure_grpc(
    address: str, queries: np.ndarray, clients: int, seconds: float
) -> tuple[float, list[float], int]:
    channels = [grpc.aio.insecure_channel(address) for _ in range(clients)]
    stubs = [search_pb2_grpc.SearchServiceStub(c) for c in channels]  # type: ignore[no-untyped-call]
    requests = [search_pb2.SearchRequest(vector=q.tolist(), k=K) for q in queries]

    async def call(i: int) -> None:
        reply = await stubs[i % clients].Search(requests[i % len(requests)], timeout=10)
        assert reply.candidates

    for i in range(clients * 5):  # warm-up
        await call(i)
    result = await drive(clients, seconds, call)
    for channel in channels:
        await channel.close()
    return result


class HttpConnection:
    """A minimal HTTP/1.1 keep-alive client (like wrk's): the load generator should not
    cost more CPU than the gateway it measures, and httpx costs about as much."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post_json(self, path: str, body: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        self.writer.write(head.encode() + body)
        status_line = await self.reader.readline()
        status = int(status_line.split()[1])
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            await self.writer.wait_closed()


async def measure_gateway(
    port: int, model_id: str, queries: np.ndarray, clients: int, seconds: float
) -> tuple[float, list[float], int]:
    bodies = [
        json.dumps({"model_id": model_id, "vector": q.tolist(), "k": K}).encode() for q in queries
    ]
    connections = [HttpConnection("127.0.0.1", port) for _ in range(clients)]

    async def call(i: int) -> None:
        status, body = await connections[i % clients].post_json(
            "/api/v1/search", bodies[i % len(bodies)]
        )
        assert status == 200 and b'"candidates":[{' in body, body[:200]

    for i in range(clients * 5):
        await call(i)
    result = await drive(clients, seconds, call)
    for connection in connections:
        await connection.close()
    return result


class CpuMeter:
    """CPU seconds each part of the system spends, to show where a request's cost goes."""

    def __init__(self, parts: dict[str, Callable[[], list[psutil.Process]]]) -> None:
        self.parts = parts

    def sample(self) -> dict[str, float]:
        totals = {}
        for name, processes in self.parts.items():
            seconds = 0.0
            for process in processes():
                try:
                    times = process.cpu_times()
                    seconds += times.user + times.system
                except psutil.Error:
                    pass
            totals[name] = seconds
        return totals

    def per_request(self, before: dict[str, float], requests: int) -> str:
        after = self.sample()
        return " / ".join(
            f"{name} {(after[name] - before[name]) * 1000 / max(requests, 1):.1f}"
            for name in self.parts
        )


def row(name: str, clients: int, result: tuple[float, list[float], int], cpu: str) -> str:
    qps, times, errors = result
    p50, p99 = np.percentile(times, 50), np.percentile(times, 99)
    return f"| {name} | {clients} | {qps:.0f} | {p50:.1f} | {p99:.1f} | {errors} | {cpu} |"


def run(args: argparse.Namespace, root: Path) -> list[str]:
    print(f"generating {args.vectors:,} clustered vectors", flush=True)
    data = search_bench.clustered(args.vectors, args.queries)
    pg = EmbeddedPostgres(root / "pg").start()
    nats = NatsServer(root / "nats", log_file=root / "nats.log").start()
    processes: list[subprocess.Popen[bytes]] = []
    try:
        catalog_port, gateway_port = free_port(), free_port()
        catalog = f"127.0.0.1:{catalog_port}"
        processes.append(
            start(
                "photosearch_catalog",
                {
                    "CATALOG_GRPC_PORT": str(catalog_port),
                    "CATALOG_METRICS_PORT": "0",  # a free port: several services share this host
                    "CATALOG_DATABASE_URL": pg.create_database("catalog"),
                    "CATALOG_NATS_URL": nats.url,
                    "CATALOG_SETTINGS_KEY": Fernet.generate_key().decode(),
                    "CATALOG_LOG_LEVEL": "warning",
                },
                root / "catalog.log",
            )
        )
        wait_grpc(catalog, processes[-1])
        items = int(data.items.max()) + 1
        print(f"creating {items:,} catalog items", flush=True)
        ids = asyncio.run(create_items(catalog, items))
        url = pg.create_database("search")
        settings = SearchSettings(database_url="", catalog_addr="")
        params = IndexParams(
            m=settings.hnsw_m,
            ef_construction=settings.hnsw_ef_construction,
            build_memory=settings.index_build_memory,
            parallel_workers=settings.index_build_parallel_workers,
        )
        print("loading vectors and building the HNSW index", flush=True)
        load_s = load(url, data, params, ids)
        search_process, search_address = search_bench.start_search(
            url,
            nats.url,
            root / "search.log",
            {"SEARCH_CATALOG_ADDR": catalog, "SEARCH_LOG_LEVEL": "warning"},
        )
        processes.append(search_process)
        wait_named(url, items)
        gateway_env = {
            "GATEWAY_HTTP_PORT": str(gateway_port),
            "GATEWAY_CATALOG_ADDR": catalog,
            "GATEWAY_SEARCH_ADDR": search_address,
            "GATEWAY_SEARCH_RATE_PER_MINUTE": "0",
            "GATEWAY_LOG_LEVEL": "warning",
            "GATEWAY_MODEL_DIR": str(root / "models"),
        }

        def start_gateway(workers: int) -> subprocess.Popen[bytes]:
            """python -m photosearch_gateway, or uvicorn's worker processes over the same
            app (its factory), on the same port."""
            if workers == 1:
                process = start("photosearch_gateway", gateway_env, root / "gateway.log")
            else:
                process = start(
                    "uvicorn",
                    gateway_env,
                    root / "gateway.log",
                    [
                        "photosearch_gateway.app:app_from_environment", "--factory",
                        "--workers", str(workers), "--host", "127.0.0.1",
                        "--port", str(gateway_port), "--loop", "uvloop", "--no-access-log",
                        "--http", "photosearch_gateway.http_protocol:BoundedHttpToolsProtocol",
                        "--log-level", "warning",
                    ],
                )  # fmt: skip
            wait_http(f"http://127.0.0.1:{gateway_port}/healthz", process)
            return process

        gateway = start_gateway(args.workers[0])
        processes.append(gateway)
        pg_dir = str(root / "pg")

        def postgres_processes() -> list[psutil.Process]:
            """This benchmark's postmaster and its backends (not other Postgres servers)."""
            for p in psutil.process_iter(["cmdline"]):
                if any(pg_dir in part for part in p.info["cmdline"] or []):
                    try:
                        return [p, *p.children(recursive=True)]
                    except psutil.Error:
                        return [p]
            return []

        by_pid = {
            name: psutil.Process(p.pid)
            for name, p in zip(("catalog", "search", "gateway"), processes, strict=True)
        }
        meter = CpuMeter(
            {
                "load generator": lambda: [psutil.Process()],
                "gateway": lambda: gateway_processes(by_pid["gateway"]),
                "search": lambda: [by_pid["search"]],
                "catalog": lambda: [by_pid["catalog"]],
                "postgres": postgres_processes,
            }
        )
        lines = [
            f"{args.vectors:,} vectors ({items:,} catalog items), 384-d, k={K};"
            f" load + HNSW build {load_s:.0f} s; {args.seconds:.0f} s per run",
            "",
            "| path | clients | requests/s | p50 ms | p99 ms | errors | CPU ms per request:"
            f" {' / '.join(meter.parts)} |",
            "|---|---|---|---|---|---|---|",
        ]
        before = meter.sample()
        time.sleep(3)
        idle = meter.per_request(before, 3)
        lines.insert(0, f"Idle CPU (ms per second, no load): {idle}")
        ratios = []
        for n, workers in enumerate(args.workers):
            if n:  # the next worker count, on the same port
                stop(by_pid["gateway"])
                processes[-1] = start_gateway(workers)
                by_pid["gateway"] = psutil.Process(processes[-1].pid)
                time.sleep(2)
            label = "gateway POST /api/v1/search" + (f" ({workers} workers)" if workers > 1 else "")
            for clients in args.clients:
                print(f"measuring at {clients} clients, {workers} gateway workers", flush=True)
                before = meter.sample()
                direct = asyncio.run(
                    measure_grpc(search_address, data.queries, clients, args.seconds)
                )
                direct_cpu = meter.per_request(before, len(direct[1]))
                before = meter.sample()
                through = asyncio.run(
                    measure_gateway(
                        gateway_port, search_bench.MODEL_ID, data.queries, clients, args.seconds
                    )
                )
                through_cpu = meter.per_request(before, len(through[1]))
                lines += [
                    row("search gRPC directly", clients, direct, direct_cpu),
                    row(label, clients, through, through_cpu),
                ]
                ratios.append(
                    f"| {workers} | {clients} | {direct[0] / through[0]:.2f}x |"
                    f" {np.percentile(through[1], 50) / np.percentile(direct[1], 50):.2f}x |"
                    f" {np.percentile(through[1], 99) / np.percentile(direct[1], 99):.2f}x |"
                )
        lines += [
            "",
            "Gateway overhead (gateway / direct):",
            "",
            "| gateway workers | clients | throughput cost (direct ÷ gateway req/s) | p50 ratio"
            " | p99 ratio |",
            "|---|---|---|---|---|",
            *ratios,
        ]
        return lines
    finally:
        for process in reversed(processes):
            process.terminate()
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
        nats.stop()
        pg.stop()


def gateway_processes(process: psutil.Process) -> list[psutil.Process]:
    """The gateway, and its worker processes when uvicorn runs several."""
    try:
        return [process, *process.children(recursive=True)]
    except psutil.Error:
        return [process]


def stop(process: psutil.Process) -> None:
    family = gateway_processes(process)
    for member in reversed(family):
        try:
            member.terminate()
        except psutil.Error:
            pass
    psutil.wait_procs(family, timeout=20)


def wait_named(url: str, items: int, timeout: float = 300) -> None:
    """Until search has kept the names of all `items` from catalog's item events."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute("SELECT count(*) FROM items WHERE name IS NOT NULL").fetchone()
            if row is not None and int(row[0]) >= items:
                return
            time.sleep(0.5)
    raise RuntimeError(f"search did not hear of all {items} items in {timeout:.0f} s")


def load(url: str, data: search_bench.Catalog, params: IndexParams, ids: list[str]) -> float:
    """The search service's own tables (its migrations and DDL), filled by binary COPY with
    vectors that point at real catalog items, then the HNSW index. Seconds taken."""
    asyncio.run(apply_migrations(url, "photosearch_search.migrations"))
    started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        register_vector(conn)
        row = conn.execute(
            "INSERT INTO models (model_id, dim) VALUES (%s, %s) RETURNING id",
            (search_bench.MODEL_ID, search_bench.DIM),
        ).fetchone()
        assert row is not None
        model = Model(search_bench.MODEL_ID, search_bench.DIM, int(row[0]))
        conn.execute(table_ddl(model, params, with_ann_index=False))
        with conn.cursor().copy(
            f"COPY {model.table} (image_id, variant, item_id, series, tags, embedding)"
            " FROM STDIN WITH (FORMAT BINARY)"
        ) as copy:
            copy.set_types(["text", "text", "text", "text", "text[]", "vector"])
            for i, vector in enumerate(data.vectors):
                item = int(data.items[i])
                copy.write_row([f"img-{i}", "global", ids[item], f"series-{item % 50}", [], vector])
        conn.execute("VACUUM ANALYZE " + model.table)
        with conn.transaction():
            conn.execute(
                "SELECT set_config('maintenance_work_mem', %s, true)", (params.build_memory,)
            )
            conn.execute(ann_index_ddl(model, params))
        conn.execute(
            "INSERT INTO search_settings (key, value) VALUES (%s, %s)",
            (ACTIVE_MODEL_KEY, search_bench.MODEL_ID),
        )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vectors", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--clients", default="16,64")
    parser.add_argument(
        "--workers", default="1", help="gateway worker processes to compare, e.g. 1,2"
    )
    parser.add_argument("--dir", default="", help="work folder (default: a temp dir)")
    args = parser.parse_args()
    args.clients = [int(c) for c in args.clients.split(",")]
    args.workers = [int(w) for w in args.workers.split(",")]
    with tempfile.TemporaryDirectory(prefix="bench-gateway-", dir=args.dir or None) as tmp:
        print("\n".join(run(args, Path(tmp))), flush=True)


if __name__ == "__main__":
    main()
