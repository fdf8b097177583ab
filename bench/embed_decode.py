"""Decoding and preprocessing alone, on one thread: what one 640-px JPEG costs before
the model sees it (the embedder's own PreprocessSpec, DINOv2-small's preprocessing), the
other half of the end-to-end ceiling in docs/benchmarks/embedder.md.

    .venv/bin/python bench/embed_decode.py [--images 64] [--rounds 3]
"""

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from embed import SETS, export, make_images  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    from photosearch_embedder.preprocess import PreprocessSpec
    from photosearch_embedder.variants import parse_variants

    images = make_images(args.images, SETS["640px"])
    files = export("dinov2-small", "int8")
    spec, variants = PreprocessSpec.from_json(files.preprocess()), parse_variants([])
    for data in images[:4]:  # warm up
        spec.tensors(data, variants)
    started = time.perf_counter()
    for _ in range(args.rounds):
        for data in images:
            spec.tensors(data, variants)
    per_image = (time.perf_counter() - started) / (args.rounds * len(images)) * 1000
    print(
        f"decode + preprocess, one thread: {per_image:.2f} ms per 640-px JPEG "
        f"({args.rounds * len(images)} decodes, load average {os.getloadavg()[0]:.2f})"
    )


if __name__ == "__main__":
    main()
