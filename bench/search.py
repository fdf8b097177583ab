"""Benchmark: nearest-item search through the search service's gRPC API on clustered
384-d fingerprints (uniform random vectors make every ANN index look broken).

Per size: bulk-load the vectors into the service's own schema, build the HNSW index
the way the service does (timed), start the real service process, then measure
p50/p99 latency of Search through gRPC (one client, sequential), throughput with 8
concurrent clients, recall@10 of the returned items against exact search (numpy),
latency with a broad and a selective filter, an ef_search sweep at the SQL level,
and ingestion of embed.completed events into the live index.

    make bench-search                      # = .venv/bin/python bench/search.py
    .venv/bin/python bench/search.py --sizes 100000 --queries 1000
    .venv/bin/python bench/search.py --sizes 100000 --halfvec --sweep 40,64,100

Starts its own embedded PostgreSQL, NATS and search process in a temp dir."""

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import psycopg
from grpc_health.v1 import health_pb2, health_pb2_grpc
from pgvector.psycopg import register_vector

from photosearch.common import subjects
from photosearch.common.db import apply_migrations
from photosearch.common.nats import connect, publish
from photosearch.events.v1 import events_pb2
from photosearch.search.v1 import search_pb2, search_pb2_grpc
from photosearch_devstack.nats_server import NatsServer
from photosearch_devstack.ports import free_port
from photosearch_devstack.postgres import EmbeddedPostgres
from photosearch_search.config import SearchSettings
from photosearch_search.domain import Model
from photosearch_search.ef_search import EfSearchPolicy
from photosearch_search.models import ACTIVE_MODEL_KEY, IndexParams, table_ddl
from photosearch_search.reindex import build_ann_index

MODEL_ID = "bench/clustered-384"
DIM = 384
K = 10
SERIES = [f"series-{n}" for n in range(50)]


@dataclass
class Catalog:
    vectors: np.ndarray  # n x DIM, unit rows, float32
    items: np.ndarray  # item number of each vector
    queries: np.ndarray  # q x DIM, unit rows


def unit_rows(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def clustered(n: int, queries: int, seed: int = 1) -> Catalog:
    """Items in clusters (~100 images per cluster), 1-3 images per item, queries that are
    noisy views of random catalog images. Cosine: image-item ~0.93, items of one
    cluster ~0.5, query-source image ~0.9."""
    rng = np.random.default_rng(seed)
    clusters = max(n // 100, 1)
    centres = unit_rows(rng.normal(size=(clusters, DIM)))
    per_item = rng.integers(1, 4, size=n)  # 1..3 images per item, avg 2
    items = np.repeat(np.arange(n), per_item)[:n]
    item_count = int(items[-1]) + 1
    item_cluster = rng.integers(0, clusters, size=item_count)
    vectors = np.empty((n, DIM), dtype=np.float32)
    chunk = 50_000
    item_vectors = np.empty((item_count, DIM), dtype=np.float32)
    for s in range(0, item_count, chunk):
        e = min(s + chunk, item_count)
        noise = rng.normal(size=(e - s, DIM)).astype(np.float32) / np.sqrt(DIM)
        item_vectors[s:e] = unit_rows(centres[item_cluster[s:e]] + 1.0 * noise)
    for s in range(0, n, chunk):
        e = min(s + chunk, n)
        noise = rng.normal(size=(e - s, DIM)).astype(np.float32) / np.sqrt(DIM)
        vectors[s:e] = unit_rows(item_vectors[items[s:e]] + 0.4 * noise)
    sources = rng.integers(0, n, size=queries)
    noise = rng.normal(size=(queries, DIM)).astype(np.float32) / np.sqrt(DIM)
    return Catalog(vectors, items, unit_rows(vectors[sources] + 0.5 * noise))


def exact_top_items(cat: Catalog, k: int) -> list[list[str]]:
    """Ground truth: each item scored by its best image, top k items per query."""
    truth = []
    for s in range(0, len(cat.queries), 256):
        sims = cat.queries[s : s + 256] @ cat.vectors.T
        top = np.argpartition(-sims, 100, axis=1)[:, :100]
        for row, idx in zip(sims, top, strict=True):
            ranked = idx[np.argsort(-row[idx])]
            seen: list[str] = []
            for i in ranked:
                item = f"item-{cat.items[i]}"
                if item not in seen:
                    seen.append(item)
                if len(seen) == k:
                    break
            truth.append(seen)
    return truth


def load(url: str, cat: Catalog, params: IndexParams) -> tuple[float, float]:
    """COPY the vectors into the model's table, then build the HNSW index. Seconds each."""
    asyncio.run(apply_migrations(url, "photosearch_search.migrations"))
    with psycopg.connect(url, autocommit=True) as conn:
        register_vector(conn)
        row = conn.execute(
            "INSERT INTO models (model_id, dim) VALUES (%s, %s) RETURNING id", (MODEL_ID, DIM)
        ).fetchone()
        assert row is not None
        model = Model(MODEL_ID, DIM, int(row[0]))
        conn.execute(table_ddl(model, params, with_ann_index=False))
        started = time.perf_counter()
        with conn.cursor().copy(
            f"COPY {model.table} (image_id, variant, item_id, series, tags, embedding)"
            " FROM STDIN WITH (FORMAT BINARY)"
        ) as copy:
            copy.set_types(["text", "text", "text", "text", "text[]", "vector"])
            for i, vector in enumerate(cat.vectors):
                item = int(cat.items[i])
                tags = ["rare"] if item % 1000 == 0 else ["common"]
                copy.write_row(
                    [f"img-{i}", "global", f"item-{item}", SERIES[item % 50], tags, vector]
                )
        copy_s = time.perf_counter() - started
        conn.execute("VACUUM ANALYZE " + model.table)
        conn.execute(
            "INSERT INTO search_settings (key, value) VALUES (%s, %s)", (ACTIVE_MODEL_KEY, MODEL_ID)
        )
    # The service's own index build (python -m photosearch_search.reindex).
    build_s = asyncio.run(build_ann_index(url, MODEL_ID, params, concurrently=False))
    return copy_s, build_s


def start_search(
    url: str, nats_url: str, log: Path, env_extra: dict[str, str]
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {
        **os.environ,
        "SEARCH_GRPC_PORT": str(port),
        "SEARCH_METRICS_PORT": "0",  # a free port: several services share this host
        "SEARCH_DATABASE_URL": url,
        "SEARCH_NATS_URL": nats_url,
        "SEARCH_CATALOG_ADDR": "127.0.0.1:9",  # not used by Search
        "SEARCH_LOG_FORMAT": "json",
        **env_extra,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "photosearch_search"],
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    address = f"127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    with grpc.insecure_channel(address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        while True:
            try:
                reply = health.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return process, address
            except grpc.RpcError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                tail = log.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"search did not become SERVING; its log ends:\n{tail}")
            time.sleep(0.1)


def request(query: np.ndarray, filters: search_pb2.Filters | None = None) -> Any:
    return search_pb2.SearchRequest(vector=query.tolist(), k=K, filters=filters)


async def latency(
    address: str, queries: np.ndarray, filters: search_pb2.Filters | None = None
) -> tuple[list[float], list[list[str]], int]:
    """Sequential calls from one client: per-call ms, returned items, exact answers."""
    async with grpc.aio.insecure_channel(address) as channel:
        stub = search_pb2_grpc.SearchServiceStub(channel)  # type: ignore[no-untyped-call]
        for q in queries[:50]:  # warm-up: connections, plans, caches
            await stub.Search(request(q, filters), timeout=10)
        times, results, exact = [], [], 0
        for q in queries:
            started = time.perf_counter()
            reply = await stub.Search(request(q, filters), timeout=10)
            times.append((time.perf_counter() - started) * 1000)
            results.append([c.item_id for c in reply.candidates])
            exact += int(reply.exact)
    return times, results, exact


async def throughput(address: str, queries: np.ndarray, clients: int, seconds: float) -> float:
    """Queries per second with `clients` concurrent callers, each on its own channel."""
    stop_at = time.perf_counter() + seconds
    done = 0

    async def client(offset: int) -> None:
        nonlocal done
        async with grpc.aio.insecure_channel(address) as channel:
            stub = search_pb2_grpc.SearchServiceStub(channel)  # type: ignore[no-untyped-call]
            i = offset
            while time.perf_counter() < stop_at:
                await stub.Search(request(queries[i % len(queries)]), timeout=10)
                done += 1
                i += clients

    started = time.perf_counter()
    await asyncio.gather(*(client(c) for c in range(clients)))
    return done / (time.perf_counter() - started)


def sweep_row(conn: Any, sql: str, cat: Catalog, truth: list[list[str]]) -> str:
    """One index query over every query vector: "recall@10 | top-1 | p50 | p99 |"."""
    from photosearch_search.domain import ImageHit
    from photosearch_search.vectors import best_per_item

    times, recall, first = [], [], []
    for q, want in zip(cat.queries, truth, strict=True):
        started = time.perf_counter()
        rows = conn.execute(sql, (q, 40)).fetchall()
        times.append((time.perf_counter() - started) * 1000)
        got = best_per_item([ImageHit(r[0], r[1], r[2]) for r in rows], K, -1.0)
        recall.append(len({c.item_id for c in got} & set(want)) / K)
        first.append(bool(got) and got[0].item_id == want[0])
    return (
        f"{np.mean(recall):.4f} | {np.mean(first):.4f} |"
        f" {np.percentile(times, 50):.2f} | {np.percentile(times, 99):.2f} |"
    )


def ef_sweep(url: str, cat: Catalog, truth: list[list[str]], values: list[int]) -> list[str]:
    """Recall and latency of the service's index query in SQL, per ef_search."""

    lines = []
    with psycopg.connect(url, autocommit=True) as conn:
        register_vector(conn)
        table = conn.execute("SELECT id FROM models WHERE model_id = %s", (MODEL_ID,)).fetchone()
        assert table is not None
        sql = (
            f"SELECT item_id, image_id, embedding <=> %s AS distance FROM vectors_{table[0]}"
            " ORDER BY distance LIMIT %s"
        )
        conn.execute("SET hnsw.iterative_scan = relaxed_order")
        for ef in values:
            conn.execute(f"SET hnsw.ef_search = {ef}")
            lines.append(f"| {ef} | {sweep_row(conn, sql, cat, truth)}")
    return lines


async def ingest(address: str, nats_url: str, count: int, seed: int) -> float:
    """embed.completed events per second until all are stored (into the live index)."""
    rng = np.random.default_rng(seed)
    vectors = unit_rows(rng.normal(size=(count, DIM)))
    nc = await connect(nats_url, "bench-search")
    js = nc.jetstream()
    async with grpc.aio.insecure_channel(address) as channel:
        stub = search_pb2_grpc.SearchServiceStub(channel)  # type: ignore[no-untyped-call]

        async def embedded() -> int:
            reply = await stub.ListModels(search_pb2.ListModelsRequest(), timeout=30)
            return next(m.embedded for m in reply.models if m.model_id == MODEL_ID)

        before = await embedded()
        started = time.perf_counter()
        for i, vector in enumerate(vectors):
            event = events_pb2.EmbedCompleted(
                image_id=f"new-{seed}-{i}",
                item_id=f"new-item-{i}",
                model_id=MODEL_ID,
                embeddings=[events_pb2.Embedding(variant="global", values=vector.tolist())],
            )
            await publish(js, subjects.EMBED_COMPLETED, event)
        while await embedded() < before + count:  # noqa: ASYNC110 (polling another process)
            await asyncio.sleep(1.0)  # a distinct count over the table: not too often
        elapsed = time.perf_counter() - started
    await nc.close()
    return count / elapsed


def duplicate_report_seconds(cat: Catalog, n: int) -> float:
    """The exact duplicate/confusable computation the service runs up to this size."""
    from photosearch_search.duplicates import Fingerprints, exact_report

    prints = Fingerprints(
        [f"img-{i}" for i in range(n)], [f"item-{cat.items[i]}" for i in range(n)], cat.vectors[:n]
    )
    started = time.perf_counter()
    exact_report(prints, 0.55, 100)
    return time.perf_counter() - started


def pct(times: list[float], p: float) -> str:
    return f"{np.percentile(times, p):.2f}"


def halfvec_study(
    url: str, cat: Catalog, truth: list[list[str]], params: IndexParams, values: list[int]
) -> list[str]:
    """The same vectors as halfvec (16-bit floats): an HNSW index on the cast beside the
    service's vector index, the same build settings; sizes of both, and the ef_search sweep
    through each (SQL)."""

    with psycopg.connect(url, autocommit=True) as conn:
        register_vector(conn)
        table = conn.execute("SELECT id FROM models WHERE model_id = %s", (MODEL_ID,)).fetchone()
        assert table is not None
        name = f"vectors_{table[0]}"
        conn.execute(f"SET maintenance_work_mem = '{params.build_memory}'")
        started = time.perf_counter()
        conn.execute(
            f"CREATE INDEX {name}_halfvec ON {name} USING hnsw"
            f" ((embedding::halfvec({DIM})) halfvec_cosine_ops)"
            f" WITH (m = {params.m}, ef_construction = {params.ef_construction})"
        )
        build_s = time.perf_counter() - started
        sizes = conn.execute(
            "SELECT i.indexrelid::regclass::text, pg_relation_size(i.indexrelid)"
            " FROM pg_index i WHERE i.indrelid = %s::regclass AND i.indisprimary = false"
            " AND pg_get_indexdef(i.indexrelid) LIKE '%%hnsw%%'",
            (name,),
        ).fetchall()
        stored = conn.execute(
            f"SELECT avg(pg_column_size(embedding)), avg(pg_column_size(embedding::halfvec({DIM})))"
            f" FROM (SELECT embedding FROM {name} LIMIT 1000) s"
        ).fetchone()
        assert stored is not None
        conn.execute("SET hnsw.iterative_scan = relaxed_order")
        lines = [
            f"halfvec index built in {build_s:.1f} s; bytes per stored vector: vector"
            f" {float(stored[0]):.0f}, halfvec {float(stored[1]):.0f}",
            "",
            "| index | size |",
            "|---|---|",
            *[f"| {index} | {size / 2**20:.1f} MiB |" for index, size in sizes],
            "",
            "| storage | ef_search | recall@10 | top-1 = exact top-1 | p50 ms | p99 ms |",
            "|---|---|---|---|---|---|",
        ]
        queries = {
            "vector": f"SELECT item_id, image_id, embedding <=> %s AS d FROM {name}"
            " ORDER BY d LIMIT %s",
            "halfvec": f"SELECT item_id, image_id, embedding::halfvec({DIM}) <=>"
            f" %s::vector::halfvec({DIM}) AS d FROM {name} ORDER BY d LIMIT %s",
        }
        for ef in values:
            conn.execute(f"SET hnsw.ef_search = {ef}")
            for storage, sql in queries.items():
                lines.append(f"| {storage} | {ef} | {sweep_row(conn, sql, cat, truth)}")
    return lines


def run_size(n: int, args: argparse.Namespace, root: Path) -> list[str]:
    settings = SearchSettings(database_url="", catalog_addr="")
    params = IndexParams(
        m=args.m or settings.hnsw_m,
        ef_construction=args.ef_construction or settings.hnsw_ef_construction,
        build_memory=args.build_memory or settings.index_build_memory,
        parallel_workers=settings.index_build_parallel_workers,
    )
    print(f"[{n}] generating clustered vectors", flush=True)
    cat = clustered(n, args.queries)
    truth = exact_top_items(cat, K)
    pg = EmbeddedPostgres(root / f"pg-{n}").start()
    nats = NatsServer(root / f"nats-{n}", log_file=root / f"nats-{n}.log").start()
    process = None
    try:
        url = pg.create_database("search")
        print(f"[{n}] loading and building the index ({params})", flush=True)
        copy_s, build_s = load(url, cat, params)
        if args.halfvec:
            return [
                f"### {n:,} vectors as vector and as halfvec (m={params.m},"
                f" ef_construction={params.ef_construction};"
                f" vector index built in {build_s:.0f} s)",
                "",
                *halfvec_study(url, cat, truth, params, args.sweep),
            ]
        if args.sql_only:
            sweep = ef_sweep(url, cat, truth, args.sweep)
            return [
                f"### {n:,} vectors: index query in SQL only (build {build_s:.0f} s,"
                f" m={params.m}, ef_construction={params.ef_construction})",
                "",
                "| ef_search | recall@10 | top-1 = exact top-1 | p50 ms | p99 ms |",
                "|---|---|---|---|---|",
                *sweep,
            ]
        # --ef-search pins the width; otherwise the service sizes it from the index.
        env = (
            {"SEARCH_HNSW_EF_SEARCH": str(args.ef_search), "SEARCH_HNSW_EF_SEARCH_PER_MILLION": "0"}
            if args.ef_search
            else {}
        )
        process, address = start_search(url, nats.url, root / f"search-{n}.log", env)
        print(f"[{n}] measuring", flush=True)
        load_before = os.getloadavg()[0]
        times, results, unfiltered_exact = asyncio.run(latency(address, cat.queries))
        recall = np.mean([len(set(r) & set(t)) / K for r, t in zip(results, truth, strict=True)])
        qps = asyncio.run(throughput(address, cat.queries, args.clients, args.seconds))
        broad, _, broad_exact = asyncio.run(
            latency(address, cat.queries[:300], search_pb2.Filters(series=[SERIES[7]]))
        )
        narrow, _, narrow_exact = asyncio.run(
            latency(address, cat.queries[:300], search_pb2.Filters(tags=["rare"]))
        )
        rate = asyncio.run(ingest(address, nats.url, args.ingest, seed=n)) if args.ingest else 0
        load_after = os.getloadavg()[0]
        report_n = min(n, SearchSettings(database_url="").duplicate_exact_max_images)
        report_s = duplicate_report_seconds(cat, report_n)
        sweep = ef_sweep(url, cat, truth, args.sweep) if args.sweep else []
    finally:
        if process is not None:
            process.terminate()
            process.wait(30)
        nats.stop()
        pg.stop()
    policy = EfSearchPolicy(settings.hnsw_ef_search, settings.hnsw_ef_search_per_million)
    ef = args.ef_search or policy.for_rows(n)
    lines = [
        f"### {n:,} vectors, {DIM}-d, {len(np.unique(cat.items)):,} items"
        f" (HNSW m={params.m}, ef_construction={params.ef_construction}, ef_search={ef})",
        "",
        f"Machine load average (2 cores, shared) {load_before:.1f} before and"
        f" {load_after:.1f} after the gRPC measurements.",
        "",
        "| measure | value |",
        "|---|---|",
        f"| bulk load (binary COPY) | {copy_s:.1f} s |",
        f"| HNSW index build (maintenance_work_mem {params.build_memory}) | {build_s:.1f} s |",
        f"| Search through gRPC, 1 client: p50 / p99 | {pct(times, 50)} / {pct(times, 99)} ms |",
        f"| recall@10 (items) vs exact, {len(times)} queries | {recall:.4f}"
        f" ({unfiltered_exact} answered by exact fallback) |",
        f"| throughput, {args.clients} concurrent clients | {qps:.0f} queries/s |",
        f"| filter on one series (2 % of items): p50 / p99 | {pct(broad, 50)} / {pct(broad, 99)}"
        f" ms ({broad_exact} of {len(broad)} exact) |",
        f"| filter on a rare tag (0.1 % of items): p50 / p99 | {pct(narrow, 50)} /"
        f" {pct(narrow, 99)} ms ({narrow_exact} of {len(narrow)} exact) |",
    ]
    if rate:
        lines.append(f"| ingest: embed.completed stored into the live index | {rate:.0f} /s |")
    lines.append(
        f"| duplicate report, every pair of {report_n:,} fingerprints (numpy) | {report_s:.1f} s |"
    )
    if sweep:
        lines += [
            "",
            "ef_search sweep (the service's index query in SQL, one connection, 40 rows):",
            "",
            "| ef_search | recall@10 | top-1 = exact top-1 | p50 ms | p99 ms |",
            "|---|---|---|---|---|",
            *sweep,
        ]
    return lines


DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"


def duplicate_study(datasets: Path, model: str) -> list[str]:
    """Pick the duplicate report's default threshold on real photos: near-duplicate
    copies (resized, re-encoded, blurred, flipped, rotated, grey) of a catalog image must
    all score above it; catalog images of different items should not. Fingerprints from
    an offline real-weight model (EfficientNet-Lite0, plain or colour-fused) through the
    module the embedder exports, with its own preprocessing."""
    import csv
    import itertools

    import torch

    from photosearch_embedder.export.fingerprint_graph import fingerprint_module
    from photosearch_embedder.models import spec_for
    from photosearch_embedder.variants import parse_variants

    spec, variants = spec_for(model), parse_variants(["global"])
    net = fingerprint_module(spec)

    def fingerprint(path: Path) -> np.ndarray:
        pixels = torch.from_numpy(spec.preprocess.tensors(path.read_bytes(), variants))
        with torch.no_grad():
            out = net(pixels)[0].numpy()
        return out / np.linalg.norm(out)

    def rows(name: str) -> list[dict[str, str]]:
        with (datasets / name / "manifest.csv").open() as f:
            return list(csv.DictReader(f))

    near = rows("near_duplicates")
    originals = {
        r["group_id"]: fingerprint(datasets / "near_duplicates" / r["file"])
        for r in near
        if r["role"] == "catalog"
    }
    positives = [
        (
            r["variant"],
            float(fingerprint(datasets / "near_duplicates" / r["file"]) @ originals[r["group_id"]]),
        )
        for r in near
        if r["role"] == "query"
    ]
    catalog = list(originals.values())
    for name in ("smvs_dvd_covers", "coil100", "lego_minifigs_kaggle_subset"):
        catalog += [
            fingerprint(datasets / name / r["file"]) for r in rows(name) if r["role"] == "catalog"
        ]
    matrix = np.stack(catalog)
    negatives = np.array(
        [float(matrix[a] @ matrix[b]) for a, b in itertools.combinations(range(len(matrix)), 2)]
    )
    lowest = min(score for _, score in positives)
    lines = [
        "| near-duplicate copy of the catalog image | cosine to the original |",
        "|---|---|",
        *(f"| {v} | {s:.3f} |" for v, s in sorted(positives, key=lambda p: p[1])),
        "",
        f"{len(negatives):,} pairs of catalog images of different items"
        f" ({len(matrix)} images, 4 datasets): max {negatives.max():.3f},"
        f" 99.9th percentile {np.percentile(negatives, 99.9):.3f},"
        f" 99th {np.percentile(negatives, 99):.3f}, median {np.median(negatives):.3f}.",
        "",
        "| threshold | copies caught | different-item pairs reported |",
        "|---|---|---|",
    ]
    for threshold in sorted({round(lowest - 0.02, 2), 0.7, 0.75, 0.8, 0.85, 0.9, 0.95}):
        caught = sum(s >= threshold for _, s in positives)
        lines.append(
            f"| {threshold:.2f} | {caught} of {len(positives)} |"
            f" {int((negatives >= threshold).sum())} of {len(negatives):,} |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--ingest", type=int, default=2000)
    parser.add_argument("--sweep", default="20,40,64,100")
    parser.add_argument("--m", type=int, default=0)
    parser.add_argument("--ef-construction", type=int, default=0)
    parser.add_argument("--ef-search", type=int, default=0)
    parser.add_argument("--build-memory", default="")
    parser.add_argument("--dir", default="", help="work folder (default: a temp dir)")
    parser.add_argument(
        "--duplicates",
        action="store_true",
        help="instead: measure the duplicate threshold on real photos",
    )
    parser.add_argument(
        "--duplicates-model",
        default="efficientnet-lite0-colour",
        help="with --duplicates: efficientnet-lite0 or efficientnet-lite0-colour",
    )
    parser.add_argument("--datasets", default=str(DATASETS))
    parser.add_argument(
        "--sql-only", action="store_true", help="only load, build and sweep ef_search in SQL"
    )
    parser.add_argument(
        "--halfvec",
        action="store_true",
        help="instead: the same vectors as halfvec beside vector (index sizes, SQL sweep)",
    )
    args = parser.parse_args()
    if args.duplicates:
        print("\n".join(duplicate_study(Path(args.datasets), args.duplicates_model)))
        return
    args.sweep = [int(v) for v in args.sweep.split(",") if v]
    with tempfile.TemporaryDirectory(prefix="bench-search-", dir=args.dir or None) as tmp:
        for size in [int(s) for s in args.sizes.split(",")]:
            print("\n".join(run_size(size, args, Path(tmp))), flush=True)
            print(flush=True)


if __name__ == "__main__":
    main()
