"""Ablation of the colour-fused fingerprint (tools/quality/colour.py): recall per dataset
for several histogram designs and weights, the near-duplicate false negatives of the
robustness suite at search's default duplicate threshold, and distinct catalog pairs
above it. The CNN part is the embedder's exported ONNX fingerprint (cached); the
colour part is computed from the same 224 crop.

    .venv/bin/python -m tools.quality.colour_sweep [--designs NAME,...] [--weights 0.5,0.6]
"""

import argparse
import hashlib
import json
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from tools.quality.colour import ColourSpec, fuse, histogram
from tools.quality.datasets import Dataset, Photo, discover, load_dataset
from tools.quality.duplicates import distinct_pairs_above
from tools.quality.extract import Extractor
from tools.quality.features import compute, make_extractor
from tools.quality.metrics import rank_items, summarise
from tools.quality.rerank import global_item_scores
from tools.quality.robustness import NEAR_DUPLICATE, make_copies, write_suite

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / "results" / "quality"
DUPLICATE_THRESHOLD = 0.55  # the threshold the sweep's table in docs/quality.md was measured at

DESIGNS: dict[str, ColourSpec] = {
    "rgb6": ColourSpec("rgb", 6),
    "rgb8": ColourSpec("rgb", 8),
    "rgb4": ColourSpec("rgb", 4),
    "rgb8-l1": ColourSpec("rgb", 8, hellinger=False),
    "opp8": ColourSpec("opponent", 8),
    "lab8": ColourSpec("lab", 8),
    "rgb8-dark": ColourSpec("rgb", 8, dark=0.15),
    "rgb8-centre": ColourSpec("rgb", 8, centre=0.3),
    "rgb8-g2": ColourSpec("rgb", 8, grid=2),
    "lab8-dark": ColourSpec("lab", 8, dark=0.15),
    "lab8-centre": ColourSpec("lab", 8, centre=0.3),
    "lab8-dark-centre": ColourSpec("lab", 8, dark=0.15, centre=0.3),
    "lab6-centre": ColourSpec("lab", 6, centre=0.3),
    "lab10-centre": ColourSpec("lab", 10, centre=0.3),
    "lab8-centre.2": ColourSpec("lab", 8, centre=0.2),
    "lab8-centre.4": ColourSpec("lab", 8, centre=0.4),
    "lab8-centre-s1.5": ColourSpec("lab", 8, centre=0.3, sigma_bins=1.5),
    "lab8-centre.2-s1.5": ColourSpec("lab", 8, centre=0.2, sigma_bins=1.5),
}


def crops(extractor: Extractor, photos: list[Photo], cache: Path) -> np.ndarray:
    """(N, 224, 224, 3) uint8: the embedder's resize and centre crop of each photo."""
    keys = [p.key for p in photos] + _tag(extractor)
    digest = hashlib.sha256(json.dumps(keys).encode()).hexdigest()[:16]
    path = cache / f"crops-{digest}.npy"
    if path.is_file():
        loaded: np.ndarray = np.load(path)
        return loaded
    out = np.stack(
        [
            np.asarray(extractor.preprocess.resize_and_crop(extractor.decode(p.path.read_bytes())))
            for p in photos
        ]
    )
    np.save(path, out)
    return out


def _tag(extractor: Extractor) -> list[str]:
    """Cache tag of a preprocessing other than the model's own (none for the default)."""
    short = extractor.preprocess.resize_short_side
    return [] if short == 256 else [f"short{short}"]


@dataclass
class Encoded:
    g: np.ndarray  # (N, D) CNN fingerprints
    g_mirror: np.ndarray  # (N, D) of the mirrored crop
    pixels: np.ndarray  # (N, 224, 224, 3) uint8


def encode(extractor: Extractor, photos: list[Photo], cache: Path) -> Encoded:
    feats = compute(
        extractor, photos, cache, variants=("mirror",), local=False, tag="".join(_tag(extractor))
    )
    g = np.stack([f.fingerprints[0] for f in feats]).astype(np.float32)
    gm = np.stack([f.fingerprints[1] for f in feats]).astype(np.float32)
    return Encoded(g, gm, crops(extractor, photos, cache))


def colour(extractor: Extractor, pixels: np.ndarray, spec: ColourSpec) -> np.ndarray:
    pre = extractor.preprocess
    mean, std = np.asarray(pre.mean), np.asarray(pre.std)
    out = []
    for start in range(0, len(pixels), 64):
        batch = np.stack([pre.to_tensor(p) for p in pixels[start : start + 64]])  # type: ignore[arg-type]
        out.append(histogram(batch, spec, mean, std))
    return np.concatenate(out)


def recall(d: Dataset, catalog: np.ndarray, queries: np.ndarray) -> tuple[float, float, float]:
    owners = [p.item for p in d.catalog]
    rankings = [
        rank_items(q.key, q.view, q.item, global_item_scores(v, catalog, owners))
        for q, v in zip(d.queries, queries, strict=True)
    ]
    s = summarise(rankings, (1, 5, 20))
    return s.recall[1], s.recall[5], s.recall[20]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--designs", default=",".join(DESIGNS))
    parser.add_argument("--weights", default="1.0,0.8,0.7,0.6,0.5,0.4")
    parser.add_argument("--tta", action="store_true", help="also mirror-averaged CNN vectors")
    parser.add_argument("--short-side", type=int, default=256, help="resize before the crop")
    args = parser.parse_args()
    extractor = make_extractor("efficientnet-lite0", CACHE / "models")
    extractor.preprocess = replace(extractor.preprocess, resize_short_side=args.short_side)
    cache = CACHE / "cache"
    datasets = [load_dataset(p) for p in discover()]
    suite = write_suite(
        make_copies([(d.name, p) for d in datasets for p in d.catalog], list(NEAR_DUPLICATE)),
        CACHE / "robustness",
    )
    started = time.monotonic()
    enc = {d.name: (encode(extractor, d.catalog, cache), encode(extractor, d.queries, cache))
           for d in datasets}  # fmt: skip
    suite_sources = encode(extractor, suite.catalog, cache)
    suite_copies = encode(extractor, suite.queries, cache)
    source_index = {p.item: i for i, p in enumerate(suite.catalog)}
    copy_source = np.asarray([source_index[q.item] for q in suite.queries])
    print(f"encoded in {time.monotonic() - started:.0f} s", flush=True)
    weights = [float(w) for w in args.weights.split(",")]
    modes = ["plain", "mirror-avg"] if args.tta else ["plain"]
    header = "| design | w | cnn | " + " | ".join(d.name[:12] for d in datasets)
    print(f"short side {args.short_side}")
    print(header + " | worst R@1 | nd FN | nd min | distinct pairs |", flush=True)
    for name in args.designs.split(","):
        spec = DESIGNS[name]
        hs = {
            d.name: tuple(colour(extractor, e.pixels, spec) for e in enc[d.name]) for d in datasets
        }
        h_src = colour(extractor, suite_sources.pixels, spec)
        h_copy = colour(extractor, suite_copies.pixels, spec)
        for mode in modes:
            for w in weights:
                cells = []
                worst = 1.0
                for d in datasets:
                    (cat, qry), (hc, hq) = enc[d.name], hs[d.name]
                    gc, gq = _cnn(cat, mode), _cnn(qry, mode)
                    r1, r5, r20 = recall(d, fuse(gc, hc, w), fuse(gq, hq, w))
                    extra = f" / {r20:.3f}" if d.name == "smvs_dvd_covers" else ""
                    cells.append(f"{r1:.3f} / {r5:.3f}{extra}")
                    if d.name != "smvs_dvd_covers":
                        worst = min(worst, r1)
                src = fuse(_cnn(suite_sources, mode), h_src, w)
                cop = fuse(_cnn(suite_copies, mode), h_copy, w)
                scores = np.sum(src[copy_source] * cop, axis=1)
                if "near_duplicates" in enc:  # its own query photos against their source
                    (cat, qry), (hc, hq) = enc["near_duplicates"], hs["near_duplicates"]
                    nd = datasets[[d.name for d in datasets].index("near_duplicates")]
                    pos = {p.item: i for i, p in enumerate(nd.catalog)}
                    idx = [pos[q.item] for q in nd.queries]
                    nd_scores = np.sum(
                        fuse(_cnn(cat, mode), hc, w)[idx] * fuse(_cnn(qry, mode), hq, w), axis=1
                    )
                    scores = np.concatenate([scores, nd_scores])
                misses = int(np.sum(scores < DUPLICATE_THRESHOLD))
                views = [q.view for q in suite.queries] + ["nd"] * (
                    len(scores) - len(suite.queries)
                )
                worst_t = views[int(np.argmin(scores))]
                distinct = distinct_pairs_above(
                    src, [p.item for p in suite.catalog], DUPLICATE_THRESHOLD
                )
                print(
                    f"| {name if w < 1 else 'none'} | {w} | {mode} | " + " | ".join(cells)
                    + f" | {worst:.3f} | {misses} | {scores.min():.3f} ({worst_t}) | {distinct} |",
                    flush=True,
                )  # fmt: skip


def _cnn(e: Encoded, mode: str) -> np.ndarray:
    if mode == "plain":
        return e.g
    v = e.g + e.g_mirror
    return np.asarray(v / np.linalg.norm(v, axis=1, keepdims=True), dtype=np.float32)


if __name__ == "__main__":
    main()
