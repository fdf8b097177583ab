"""What a technique costs: bytes the browser sends per query, bytes stored per catalog
photo, and server time to re-rank the top-k candidates of one query."""

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from tools.quality.extract import LocalFeatures
from tools.quality.offline import Prepared, Technique
from tools.quality.rerank import best_local

FLOAT32 = 4


@dataclass(frozen=True)
class Cost:
    query_bytes_mean: float
    query_bytes_max: int
    stored_bytes_per_photo: float
    rerank_ms_p50: float
    rerank_ms_p90: float
    candidates: int

    def to_json(self) -> dict[str, Any]:
        return {k: round(v, 2) if isinstance(v, float) else v for k, v in self.__dict__.items()}


def descriptor_bytes(features: LocalFeatures, int8: bool) -> int:
    """Raw payload: one value per dimension per cell (1 byte int8, else 4), plus the grid
    (two 16-bit numbers); cell positions follow from the grid, or, when only some cells
    are kept, one 16-bit cell index each."""
    n, d = features.cells.shape
    rows, cols = features.grid
    positions = 0 if n == rows * cols else 2 * n
    return int(n * d * (1 if int8 else FLOAT32) + 4 + positions)


def measure(prepared: Prepared, technique: Technique, repeats: int = 40) -> Cost:
    settings = technique.rerank
    if settings is None:
        raise ValueError(f"{technique.name} does not re-rank")
    int8 = technique.local_int8
    global_bytes = prepared.catalog[0].fingerprints.shape[-1] * FLOAT32
    queries = [
        sum(descriptor_bytes(v.local, int8) for v in views if v.local is not None) + global_bytes
        for views in prepared.queries
    ]
    stored = [
        descriptor_bytes(f.local, int8) + f.fingerprints.size * FLOAT32
        for f in prepared.catalog
        if f.local is not None
    ]
    # Time re-ranking against `top_k` catalog photos (cycled when the catalog is smaller).
    catalog = [f.local for f in prepared.catalog if f.local is not None]
    rng = np.random.default_rng(0)
    times = []
    for index in rng.choice(len(prepared.queries), min(repeats, len(prepared.queries)), False):
        views = [v.local for v in prepared.queries[int(index)] if v.local is not None]
        candidates = [catalog[i % len(catalog)] for i in range(settings.top_k)]
        started = time.perf_counter()
        for c in candidates:
            best_local(views, [c], settings)
        times.append((time.perf_counter() - started) * 1000)
    return Cost(
        float(np.mean(queries)),
        int(np.max(queries)),
        float(np.mean(stored)),
        float(np.percentile(times, 50)),
        float(np.percentile(times, 90)),
        settings.top_k,
    )
