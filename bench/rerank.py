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
3. With --rpc: the Search RPC p50/p99 with and without local descriptors against a real
   search service (embedded Postgres + NATS) holding the catalog's vectors and descriptors.

    .venv/bin/python bench/rerank.py                  # 1 and 2
    .venv/bin/python bench/rerank.py --rpc            # and 3
"""

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from photosearch.common.local import LocalGrid, keep_salient  # noqa: E402
from photosearch_search.domain import Candidate  # noqa: E402
from photosearch_search.matching import MatchSettings, match_pairs  # noqa: E402
from photosearch_search.rerank import RerankSettings, StoredPhoto, rerank  # noqa: E402
from tools.quality import compress, techniques  # noqa: E402
from tools.quality import rerank as reference  # noqa: E402
from tools.quality.datasets import DEFAULT_ROOT, load_dataset  # noqa: E402
from tools.quality.extract import LocalFeatures, grid_xy  # noqa: E402
from tools.quality.features import compute, make_extractor  # noqa: E402
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
    codes = compress.quantise(projection.project(cells))
    full = LocalGrid(rows, cols, np.arange(rows * cols, dtype=np.int32), codes)
    kept = keep_salient(full)
    xy = grid_xy(rows, cols)[kept.index]
    features = LocalFeatures(compress.dequantise(kept.codes), xy, grid, aspect)
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
    differences, pairs, inliers_total, largest = 0, 0, 0, 0
    for _ in range(rounds):
        for index in chosen:
            views = queries[int(index)]
            started = time.perf_counter()
            grids = [v.grid for v in views]
            batched = match_pairs(grids, [c.grid for c in candidates], match)
            times["batched"].append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            expected = [[reference.local_score(v.features, c.features) for c in candidates]
                        for v in views]  # fmt: skip
            times["reference"].append((time.perf_counter() - started) * 1000)
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
    ours = RerankSettings(top_k=top_k)
    vectors = np.stack([p.fingerprint for p in catalog])
    by_item_ref: dict[str, list[LocalFeatures]] = {}
    by_item: dict[str, list[StoredPhoto]] = {}
    for number, (photo, item) in enumerate(zip(catalog, owners, strict=True)):
        by_item_ref.setdefault(item, []).append(photo.features)
        by_item.setdefault(item, []).append(StoredPhoto(f"img-{number}", photo.grid))
    rankings: dict[str, list[Any]] = {"reference": [], "batched": []}
    for query, views in zip(dataset.queries, queries, strict=True):
        scores = reference.global_item_scores(views[0].fingerprint, vectors, owners)
        ref_scores = reference.rerank(
            scores, [v.features for v in views], lambda i: by_item_ref.get(i, []), settings
        )
        rankings["reference"].append(rank_items(query.key, query.view, query.item, ref_scores))
        ordered = reference.top_items(scores, len(scores))
        candidates = [Candidate(i, "", scores[i]) for i in ordered]
        top = {c.item_id: by_item[c.item_id] for c in candidates[:top_k]}
        result = rerank(candidates, [v.grid for v in views], top, ours)
        rankings["batched"].append(
            rank_items(query.key, query.view, query.item, {c.item_id: c.score for c in result})
        )
    out: dict[str, Any] = {"queries": len(dataset.queries)}
    for name, ranked in rankings.items():
        summary = summarise(ranked)
        out[name] = {"recall@1": summary.recall[1], "recall@5": summary.recall[5]}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="efficientnet-lite0")
    parser.add_argument("--queries", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--top-k", type=int, default=20)
    parser.add_argument("--no-recall", dest="recall", action="store_false")
    parser.add_argument("--rpc", action="store_true")
    args = parser.parse_args()
    dataset, catalog, owners, queries = load(args.model)
    report: dict[str, Any] = {"cost": cost(catalog, queries, args.queries, args.top_k, args.rounds)}
    print(json.dumps(report["cost"]), flush=True)
    if args.recall:
        report["recall"] = recall(dataset, catalog, owners, queries, args.top_k)
        print(json.dumps(report["recall"]), flush=True)
    if args.rpc:
        from bench.rerank_rpc import measure_rpc

        report["rpc"] = measure_rpc(catalog, owners, queries)
        print(json.dumps(report["rpc"]), flush=True)


if __name__ == "__main__":
    main()
