"""Benchmark: the cost of matching one search's candidates in search's worker threads
against the main thread, with glibc's default allocator settings and with search's own
(`photosearch_search/allocator.py`).

Real descriptors (bench/rerank.py's: smvs_dvd_covers, EfficientNet-Lite0 block 4, PCA-64,
int8, 250 salient cells): each query's photo as taken against its global top 20, as search
matches it first. Each allocator setting runs in a process of its own (the setting is
process-wide and cannot be undone), the two alternating; each reports per search the
wall-clock and CPU time and the minor page faults of the thread that matched.

    .venv/bin/python bench/rerank_threads.py
"""

import os

# As the search service runs (photosearch_search/__main__.py): one BLAS thread per call.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from bench.rerank import load  # noqa: E402
from photosearch.common.local import LocalGrid  # noqa: E402
from photosearch_search.allocator import keep_freed_memory  # noqa: E402
from photosearch_search.matching import MatchSettings, match_pairs  # noqa: E402
from tools.quality import rerank as reference  # noqa: E402

TOP_K = 20


def searches(count: int) -> list[tuple[LocalGrid, list[LocalGrid]]]:
    _, catalog, owners, queries = load("efficientnet-lite0")
    vectors = np.stack([p.fingerprint for p in catalog])
    out = []
    for views in queries[:count]:
        scores = reference.global_item_scores(views[0].fingerprint, vectors, owners)
        top = reference.top_items(scores, TOP_K)
        out.append((views[0].grid, [catalog[owners.index(item)].grid for item in top]))
    return out


def one_search(view: LocalGrid, photos: list[LocalGrid]) -> tuple[float, float, int]:
    """Wall ms, CPU ms and minor page faults of this thread for one search's matching."""
    faults = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
    started, cpu = time.perf_counter(), time.thread_time()
    match_pairs([view], photos, MatchSettings())
    return (
        (time.perf_counter() - started) * 1000,
        (time.thread_time() - cpu) * 1000,
        resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - faults,
    )


def measure(allocator: str, count: int) -> dict[str, Any]:
    if allocator == "search" and not keep_freed_memory():
        raise SystemExit("this C library has no mallopt")
    work = searches(count)
    out: dict[str, Any] = {"allocator": allocator, "searches": len(work)}
    with ThreadPoolExecutor(1) as worker:
        for where in ("main", "worker"):
            run = (
                (lambda s: one_search(*s))
                if where == "main"
                else (lambda s: worker.submit(one_search, *s).result())
            )
            for s in work[:10]:  # warm-up
                run(s)
            wall, cpu, faults = zip(*(run(s) for s in work), strict=True)
            out[where] = {
                "wall_ms_p50": round(statistics.median(wall), 2),
                "cpu_ms_p50": round(statistics.median(cpu), 2),
                "faults_p50": statistics.median(faults),
            }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--allocator", choices=["default", "search"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.allocator:  # one measurement, in this process
        print(json.dumps(measure(args.allocator, args.queries)), flush=True)
        return
    for _ in range(args.rounds):
        for allocator in ("default", "search"):
            command = [sys.executable, __file__, "--allocator", allocator]
            command += ["--queries", str(args.queries)]
            subprocess.run(command, check=True)


if __name__ == "__main__":
    main()
