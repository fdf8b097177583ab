"""Benchmark: local-descriptor re-ranking in search (services/search/photosearch_search/
matching.py, batched) against the per-pair reference of the quality harness
(tools/quality/matching.py), side by side on the same real descriptors.

The descriptors are those of `rerank-rot-64-top250` on smvs_dvd_covers (EfficientNet-Lite0
block-4 cells, PCA-64, int8, the 250 most salient cells per photo; queries as taken and
turned 90 and 270 degrees), from the quality harness's cache (computed on first use).

1. Cost per query: re-ranking 20 candidates (3 views x 20 photos), both implementations
   interleaved query by query, over --queries queries (`tools/quality/cost.py`'s choice
   of queries and candidates); inlier counts compared pair by pair.
2. Recall@1 / @5 on every query: global top 20 re-ranked by each implementation.
3. With --rpc: the Search RPC p50/p99 without local descriptors, with all three views, and
   with the photo as taken only (the page's first request), against a real search service
   (embedded Postgres + NATS) holding the catalog's vectors and descriptors; once per
   --rpc-regions value (region-index candidates per search, 0 = fingerprint candidates
   only), each on a fresh service whose region index covers the catalog; and, for region
   runs, once per --rpc-memory value (SEARCH_REGION_MEMORY_MIB: 0 = the word query in SQL),
   so the in-memory and SQL word queries are timed in one run.

    .venv/bin/python bench/rerank.py                  # 1 and 2
    .venv/bin/python bench/rerank.py --rpc            # and 3
"""

import os

# As the search service runs (photosearch_search/__main__.py): one BLAS thread per call.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import grpc  # noqa: E402
import numpy as np  # noqa: E402

from photosearch.common import subjects  # noqa: E402
from photosearch.common.local import (  # noqa: E402
    LocalGrid,
    dequantise,
    keep_salient,
    quantise,
    to_proto,
)
from photosearch.common.nats import connect, publish  # noqa: E402
from photosearch.events.v1 import events_pb2  # noqa: E402
from photosearch.search.v1 import search_pb2, search_pb2_grpc  # noqa: E402
from photosearch_devstack.nats_server import NatsServer  # noqa: E402
from photosearch_devstack.postgres import EmbeddedPostgres  # noqa: E402
from photosearch_search.domain import Candidate  # noqa: E402
from photosearch_search.matching import MatchSettings, match_pairs  # noqa: E402
from photosearch_search.rerank import (  # noqa: E402
    Evidence,
    RerankSettings,
    StoredPhoto,
    rerank,
    rescore,
)
from tools.quality import compress, techniques  # noqa: E402
from tools.quality import rerank as reference  # noqa: E402
from tools.quality.datasets import DEFAULT_ROOT, load_dataset  # noqa: E402
from tools.quality.extract import LocalFeatures, grid_xy  # noqa: E402
from tools.quality.features import compute, make_extractor  # noqa: E402
from tools.quality.matching import local_score  # noqa: E402
from tools.quality.metrics import rank_items, summarise  # noqa: E402

CACHE = ROOT / "results" / "quality"
DATASET = "smvs_dvd_covers"
TECHNIQUE = "rerank-rot-64-top250"


@dataclass
class Photo:
    """One photo (or turned view) in both forms: the int8 grid search stores and the
    float cells the reference takes (the same codes, scaled back)."""

    grid: LocalGrid
    features: LocalFeatures
    fingerprint: np.ndarray


def to_photo(
    cells: np.ndarray,
    grid: tuple[int, int],
    aspect: float,
    projection: Any,
    fingerprint: np.ndarray,
) -> Photo:
    rows, cols = grid
    codes = quantise(projection.project(cells))
    full = LocalGrid(rows, cols, np.arange(rows * cols, dtype=np.int32), codes)
    kept = keep_salient(full)
    xy = grid_xy(rows, cols)[kept.index]
    features = LocalFeatures(dequantise(kept.codes), xy, grid, aspect)
    return Photo(kept, features, fingerprint)


def load(model: str) -> tuple[Any, list[Photo], list[str], list[list[Photo]]]:
    technique = techniques.CATALOG[TECHNIQUE]
    extractor = make_extractor(model, CACHE / "models")
    dataset = load_dataset(DEFAULT_ROOT / DATASET)
    cache = CACHE / "cache"
    projection = compress.default_projection(extractor, cache, technique.local_dim)

    def photos(features: list[Any]) -> list[Photo]:
        return [
            to_photo(f.local.cells, f.local.grid, f.local.aspect, projection, f.fingerprints[0])
            for f in features
        ]

    catalog = photos(compute(extractor, dataset.catalog, cache, long_side=technique.long_side))
    per_rotation = [
        photos(
            compute(extractor, dataset.queries, cache, long_side=technique.long_side, rotate=angle)
        )
        for angle in technique.query_rotations
    ]
    queries = [list(views) for views in zip(*per_rotation, strict=True)]
    return dataset, catalog, [p.item for p in dataset.catalog], queries


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def cost(catalog: list[Photo], queries: list[list[Photo]], count: int, top_k: int,
         rounds: int) -> dict[str, Any]:  # fmt: skip
    """Both implementations on the same (query, 20 candidates), interleaved."""
    settings = techniques.CATALOG[TECHNIQUE].rerank
    assert settings is not None
    match = MatchSettings()
    rng = np.random.default_rng(0)
    chosen = rng.choice(len(queries), min(count, len(queries)), False)
    candidates = [catalog[i % len(catalog)] for i in range(top_k)]
    times: dict[str, list[float]] = {"batched": [], "reference": []}
    # CPU time of the process (all threads): what the work costs a quiet machine.
    cpu_times: dict[str, list[float]] = {"batched": [], "reference": []}
    differences, pairs, inliers_total, largest = 0, 0, 0, 0
    for _ in range(rounds):
        for index in chosen:
            views = queries[int(index)]
            started, cpu = time.perf_counter(), time.process_time()
            grids = [v.grid for v in views]
            batched = match_pairs(grids, [c.grid for c in candidates], match)
            times["batched"].append((time.perf_counter() - started) * 1000)
            cpu_times["batched"].append((time.process_time() - cpu) * 1000)
            started, cpu = time.perf_counter(), time.process_time()
            expected = [[local_score(v.features, c.features) for c in candidates] for v in views]
            times["reference"].append((time.perf_counter() - started) * 1000)
            cpu_times["reference"].append((time.process_time() - cpu) * 1000)
            for v, row in enumerate(expected):
                for j, score in enumerate(row):
                    pairs += 1
                    inliers_total += score.inliers
                    if (score.matches, score.inliers) != (
                        int(batched.matches[v, j]),
                        int(batched.inliers[v, j]),
                    ):
                        differences += 1
                        largest = max(largest, abs(score.inliers - int(batched.inliers[v, j])))
    return {
        "queries": len(chosen),
        "rounds": rounds,
        "views": len(queries[0]),
        "candidates": top_k,
        **{
            f"{name}_ms_{label}": round(percentile(values, q), 2)
            for name, values in times.items()
            for label, q in (("p50", 50), ("p90", 90), ("p99", 99))
        },
        **{
            f"{name}_cpu_ms_p50": round(percentile(values, 50), 2)
            for name, values in cpu_times.items()
        },
        "speedup_p50": round(
            percentile(times["reference"], 50) / percentile(times["batched"], 50), 1
        ),
        "pairs_compared": pairs,
        "pairs_different": differences,
        "largest_inlier_difference": largest,
        "inliers_mean": round(inliers_total / max(pairs, 1), 2),
    }


def recall(dataset: Any, catalog: list[Photo], owners: list[str], queries: list[list[Photo]],
           top_k: int) -> dict[str, Any]:  # fmt: skip
    """Global top-k re-ranked by each implementation, over every query."""
    settings = techniques.CATALOG[TECHNIQUE].rerank
    assert settings is not None
    # Search's scoring rule on both matchers' evidence, so that only the matcher differs.
    ours = RerankSettings(top_k=top_k, turned_views_below=0)
    vectors = np.stack([p.fingerprint for p in catalog])
    by_item_ref: dict[str, list[LocalFeatures]] = {}
    by_item: dict[str, list[StoredPhoto]] = {}
    for number, (photo, item) in enumerate(zip(catalog, owners, strict=True)):
        by_item_ref.setdefault(item, []).append(photo.features)
        by_item.setdefault(item, []).append(StoredPhoto(f"img-{number}", photo.grid))
    rankings: dict[str, list[Any]] = {"reference": [], "batched": []}
    for query, views in zip(dataset.queries, queries, strict=True):
        scores = reference.global_item_scores(views[0].fingerprint, vectors, owners)
        ordered = reference.top_items(scores, len(scores))
        candidates = [Candidate(i, "", scores[i]) for i in ordered]
        top = {c.item_id: by_item[c.item_id] for c in candidates[:top_k]}
        found = {
            item: reference.best_local([v.features for v in views], by_item_ref[item], settings)
            for item in top
        }
        evidence = {item: Evidence(e.matches, e.inliers, "") for item, e in found.items()}
        for name, result in (
            ("reference", rescore(candidates, evidence, ours)),
            ("batched", rerank(candidates, [v.grid for v in views], top, ours)),
        ):
            item_scores = {c.item_id: c.score for c in result}
            rankings[name].append(rank_items(query.key, query.view, query.item, item_scores))
    out: dict[str, Any] = {"queries": len(dataset.queries)}
    for name, ranked in rankings.items():
        summary = summarise(ranked)
        out[name] = {"recall@1": summary.recall[1], "recall@5": summary.recall[5]}
    return out


MODEL_ID = "bench/efficientnet-lite0"


def search_request(views: list[Photo], local: bool) -> search_pb2.SearchRequest:
    return search_pb2.SearchRequest(
        model_id=MODEL_ID,
        vector=views[0].fingerprint.astype(float).tolist(),
        k=10,
        local=[to_proto(v.grid) for v in views] if local else [],
    )


async def load_catalog(
    nats_url: str, address: str, catalog: list[Photo], owners: list[str]
) -> None:
    """The catalog's vectors and descriptors in as an embedder would send them."""
    nc = await connect(nats_url, "bench-rerank")
    js = nc.jetstream()
    for number, (photo, item) in enumerate(zip(catalog, owners, strict=True)):
        event = events_pb2.EmbedCompleted(
            image_id=f"img-{number:03d}",
            item_id=item,
            model_id=MODEL_ID,
            embeddings=[events_pb2.Embedding(variant="global", values=photo.fingerprint.tolist())],
            local=to_proto(photo.grid),
            worker_id="bench",
        )
        await publish(js, subjects.EMBED_COMPLETED, event)
    await nc.close()
    items = len(set(owners))
    async with grpc.aio.insecure_channel(address) as channel:
        stub = search_pb2_grpc.SearchServiceStub(channel)  # type: ignore[no-untyped-call]
        probe = search_request([catalog[0]], local=False)
        probe.k = items
        for _ in range(600):
            try:
                reply = await stub.Search(probe, timeout=10)
                if len(reply.candidates) == items:
                    return
            except grpc.aio.AioRpcError:
                pass  # the model is registered with its first vector
            await asyncio.sleep(0.1)
    raise RuntimeError("the catalog did not become searchable")


def regions_ready(url: str, photos: int) -> None:
    """Until the region index serves every photo (its candidates are part of the cost)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        for _ in range(1200):
            row = conn.execute(
                "SELECT count(DISTINCT p.image_id) FROM region_postings p JOIN codebooks c"
                " USING (model_id, version) WHERE c.ready_at IS NOT NULL"
            ).fetchone()
            if row is not None and row[0] >= photos:
                return
            time.sleep(0.1)
    raise RuntimeError("the region index did not cover the catalog")


async def timed(
    address: str, requests: list[search_pb2.SearchRequest]
) -> tuple[list[float], list[search_pb2.SearchResponse]]:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = search_pb2_grpc.SearchServiceStub(channel)  # type: ignore[no-untyped-call]
        for request in requests[:20]:  # warm-up
            await stub.Search(request, timeout=30)
        times, replies = [], []
        for request in requests:
            started = time.perf_counter()
            replies.append(await stub.Search(request, timeout=30))
            times.append((time.perf_counter() - started) * 1000)
    return times, replies


async def beside_reranking(address: str, plain: list[search_pb2.SearchRequest],
                           local: list[search_pb2.SearchRequest]) -> list[float]:  # fmt: skip
    """Plain searches timed while two other clients send re-ranked ones back to back."""
    stop = asyncio.Event()

    async def busy(offset: int) -> None:
        async with grpc.aio.insecure_channel(address) as channel:
            stub = search_pb2_grpc.SearchServiceStub(channel)  # type: ignore[no-untyped-call]
            n = offset
            while not stop.is_set():
                await stub.Search(local[n % len(local)], timeout=30)
                n += 1

    tasks = [asyncio.create_task(busy(i * 7)) for i in range(2)]
    await asyncio.sleep(1.0)
    times, _ = await timed(address, plain)
    stop.set()
    await asyncio.gather(*tasks)
    return times


def measure_rpc(dataset: Any, catalog: list[Photo], owners: list[str], queries: list[list[Photo]],
                rounds: int, regions: int, memory_mib: int) -> dict[str, Any]:  # fmt: skip
    """Search RPC p50/p99 with and without local descriptors, and recall@1 through it,
    with `regions` region-index candidates (SEARCH_REGION_CANDIDATES) per search and
    `memory_mib` for the region index's postings (SEARCH_REGION_MEMORY_MIB)."""
    from bench.search import start_search

    with tempfile.TemporaryDirectory(prefix="bench-rerank-") as tmp:
        root = Path(tmp)
        pg = EmbeddedPostgres(root / "pg").start()
        nats = NatsServer(root / "nats", log_file=root / "nats.log").start()
        process = None
        try:
            url = pg.create_database("search")
            env = {
                "SEARCH_DEFAULT_MODEL_ID": MODEL_ID,
                "SEARCH_REGION_POLL_SECONDS": "1",
                "SEARCH_REGION_CANDIDATES": str(regions),
                "SEARCH_REGION_MIN_PHOTOS": str(len(catalog)),
                "SEARCH_REGION_MEMORY_MIB": str(memory_mib),
            }
            process, address = start_search(url, nats.url, root / "search.log", env)
            asyncio.run(load_catalog(nats.url, address, catalog, owners))
            if regions:
                regions_ready(url, len(catalog))
            plain = [search_request(v, local=False) for v in queries] * rounds
            local = [search_request(v, local=True) for v in queries] * rounds
            # The page's first request: the photo as taken only.
            upright = [search_request(v[:1], local=True) for v in queries] * rounds
            out: dict[str, Any] = {
                "queries": len(queries),
                "rounds": rounds,
                "regions": regions,
                "region_memory_mib": memory_mib,
            }
            # Interleaved in blocks, so a busy moment hurts all alike.
            times: dict[str, list[float]] = {"plain": [], "local": [], "local_upright": []}
            replies: list[search_pb2.SearchResponse] = []
            block = 50
            for start in range(0, len(plain), block):
                t, _ = asyncio.run(timed(address, plain[start : start + block]))
                times["plain"] += t
                t, r = asyncio.run(timed(address, local[start : start + block]))
                times["local"] += t
                replies += r
                t, _ = asyncio.run(timed(address, upright[start : start + block]))
                times["local_upright"] += t
            for name, values in times.items():
                out[f"{name}_ms_p50"] = round(percentile(values, 50), 2)
                out[f"{name}_ms_p99"] = round(percentile(values, 99), 2)
            # Where a re-ranked search's time goes, stage by stage (the reply's timings).
            stages: dict[str, list[float]] = {}
            for reply in replies:
                for stage in reply.timings:
                    stages.setdefault(stage.stage, []).append(stage.milliseconds)
            for stage, values in stages.items():
                out[f"local_stage_{stage}_ms_p50"] = round(percentile(values, 50), 2)
            beside = asyncio.run(beside_reranking(address, plain[: len(queries)], local))
            out["plain_beside_2_reranking_clients_ms_p50"] = round(percentile(beside, 50), 2)
            out["plain_beside_2_reranking_clients_ms_p99"] = round(percentile(beside, 99), 2)
            first = replies[: len(queries)]
            right = [
                bool(r.candidates) and r.candidates[0].item_id == q.item
                for r, q in zip(first, dataset.queries, strict=True)
            ]
            out["reranked"] = all(r.reranked for r in first)
            out["recall@1_through_rpc"] = round(float(np.mean(right)), 4)
            return out
        finally:
            if process is not None:
                process.terminate()
                process.wait(30)
            nats.stop()
            pg.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="efficientnet-lite0")
    parser.add_argument("--queries", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--top-k", type=int, default=20)
    parser.add_argument("--no-recall", dest="recall", action="store_false")
    parser.add_argument("--rpc", action="store_true")
    parser.add_argument("--rpc-rounds", type=int, default=2, help="passes over the queries")
    parser.add_argument(
        "--rpc-regions", default="5,0", help="region-index candidates per search, one run each"
    )
    parser.add_argument(
        "--rpc-memory",
        default="64",
        help="SEARCH_REGION_MEMORY_MIB values for region runs, one run each (0 = SQL)",
    )
    args = parser.parse_args()
    dataset, catalog, owners, queries = load(args.model)
    report: dict[str, Any] = {"cost": cost(catalog, queries, args.queries, args.top_k, args.rounds)}
    print(json.dumps(report["cost"]), flush=True)
    if args.recall:
        report["recall"] = recall(dataset, catalog, owners, queries, args.top_k)
        print(json.dumps(report["recall"]), flush=True)
    if args.rpc:
        report["rpc"] = []
        memories = [int(m) for m in args.rpc_memory.split(",")]
        for regions in (int(r) for r in args.rpc_regions.split(",")):
            # Without region candidates the postings are never read: one run is enough.
            for memory_mib in memories if regions else memories[:1]:
                found = measure_rpc(
                    dataset, catalog, owners, queries, args.rpc_rounds, regions, memory_mib
                )
                report["rpc"].append(found)
                print(json.dumps(found), flush=True)


if __name__ == "__main__":
    main()
