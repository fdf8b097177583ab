"""Per photo: the fingerprint pass vs the local-descriptor pass of the embedder, side by
side in one process, on real 640-px JPEGs (read in place).

For each photo, interleaved, `--rounds` times (after one warm-up round):
  fingerprint  preprocess (resize + centre crop) + fingerprint graph, batch of 1
  local        preprocess (whole photo, long side 448) + local.onnx + salient cells
  embed        Embedder.embed as the worker runs it (decode + fingerprint + local)
  embed-plain  Embedder.embed without local descriptors (decode + fingerprint)
Model calls alone are timed too (`*-model`). Prints one JSON document.

    .venv/bin/python bench/embed_local.py \
        --photos ../shared/datasets/smvs_dvd_covers/query/canon --count 12 --rounds 5
"""

import argparse
import asyncio
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image

from photosearch.common.local import from_feature_map, keep_salient
from photosearch_embedder.export import export_model
from photosearch_embedder.manager import ModelManager
from photosearch_embedder.models import spec_for
from photosearch_embedder.runtime import FingerprintEncoder, LocalEncoder
from photosearch_embedder.runtime_choice import as_exported
from photosearch_embedder.service import Embedder
from photosearch_embedder.variants import parse_variants

ROOT = Path(__file__).resolve().parents[1]


def timed(run: Callable[[], Any]) -> float:
    started = time.perf_counter()
    run()
    return (time.perf_counter() - started) * 1000


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "p50_ms": round(statistics.median(ordered), 2),
        "p90_ms": round(ordered[int(0.9 * (len(ordered) - 1))], 2),
        "mean_ms": round(statistics.fmean(ordered), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, required=True, help="a folder of JPEGs")
    parser.add_argument("--count", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="onnxruntime threads (0: all)")
    parser.add_argument("--cache", type=Path, default=ROOT / ".data" / "bench-local")
    args = parser.parse_args()

    files = export_model(spec_for("efficientnet-lite0"), args.cache, "none")
    manager = ModelManager(files, threads=args.threads)
    embedder = Embedder(manager)
    pre = embedder.preprocess
    assert pre.local is not None
    exported = as_exported(files)  # both graphs in onnxruntime, as exported
    assert exported.local is not None
    fingerprint = FingerprintEncoder(files, exported.fingerprint.engine, "cpu", args.threads)
    local = LocalEncoder(files, pre.local, exported.local.engine, "cpu", args.threads)
    paths = sorted(args.photos.glob("*.jpg"))[: args.count]
    photos = [p.read_bytes() for p in paths]
    images = [pre.decode(d, parse_variants([])) for d in photos]
    variant = parse_variants([])[0]
    times: dict[str, list[float]] = {}
    grids: list[tuple[int, int, int]] = []

    def record(name: str, value: float, warm: bool) -> None:
        if not warm:
            times.setdefault(name, []).append(value)

    async def embed(data: bytes, rotations: tuple[int, ...]) -> None:
        await embedder.embed([data], [], rotations)

    loop = asyncio.new_event_loop()

    def measure(data: bytes, image: Image.Image, warm: bool) -> None:
        tensor = pre.view(image, variant)[None]
        record("fingerprint-model", timed(lambda: fingerprint.encode(tensor)), warm)
        record(
            "fingerprint", timed(lambda: fingerprint.encode(pre.view(image, variant)[None])), warm
        )
        local_tensor = pre.local_tensor(image)
        record("local-model", timed(lambda: local.describe(local_tensor)), warm)

        def local_pass() -> None:
            grid = keep_salient(from_feature_map(local.describe(pre.local_tensor(image))))
            if warm:
                grids.append((grid.rows, grid.cols, len(grid)))

        record("local", timed(local_pass), warm)
        record("embed-plain", timed(lambda: loop.run_until_complete(embed(data, ()))), warm)
        record("embed", timed(lambda: loop.run_until_complete(embed(data, (0,)))), warm)

    for round_ in range(args.rounds + 1):
        for data, image in zip(photos, images, strict=True):
            measure(data, image, warm=round_ == 0)
    loop.run_until_complete(manager.close())
    embedder.close()
    result = {
        "photos": [str(p) for p in paths],
        "sizes": sorted({f"{i.size[0]}x{i.size[1]}" for i in images}),
        "grids": sorted({f"{r}x{c} ({n} kept)" for r, c, n in grids}),
        "rounds": args.rounds,
        "threads": args.threads,
        "per_photo": {name: summary(values) for name, values in times.items()},
        "local_vs_fingerprint_p50": round(
            statistics.median(times["local"]) / statistics.median(times["fingerprint"]), 2
        ),
        "local_vs_fingerprint_model_p50": round(
            statistics.median(times["local-model"]) / statistics.median(times["fingerprint-model"]),
            2,
        ),
        "embed_vs_plain_p50": round(
            statistics.median(times["embed"]) / statistics.median(times["embed-plain"]), 2
        ),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
