"""Benchmark: candidate recall in a large catalog. Is the right item among what
re-ranking sees (the fingerprint's top k, the region index's top m, their union) when
the catalog holds 1,000 or 10,000 items?

The evaluated dataset's catalog photos are joined by distractor items: the photos of the
*other* datasets (their catalog and query photos), then variants of those (crops, flips,
small turns, colour changes) until the catalog has the size asked. Every photo goes
through the services' own code: the embedder's fingerprint and local graph, search's
codebook (trained on the whole catalog, as search trains it) and region ranking.

    .venv/bin/python bench/candidates.py                          # smvs and LEGO, 1k and 10k
    .venv/bin/python bench/candidates.py --datasets smvs_dvd_covers --sizes 1000

Distractor files are written under results/quality/distractors/<dataset> (git-ignored)."""

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from PIL import Image, ImageEnhance  # noqa: E402

from photosearch_search.codebook import CodebookRule, bag_of, rank_photos, train  # noqa: E402
from photosearch_search.rerank import query_views  # noqa: E402
from tools.quality.datasets import DEFAULT_ROOT, Dataset, Photo, discover, load_dataset  # noqa: E402
from tools.quality.features import compute, exported_model, make_extractor  # noqa: E402
from tools.quality.service_rerank import ServiceDescriptors  # noqa: E402

CACHE = ROOT / "results" / "quality"
DEPTHS = (10, 20, 50)


def distractors(others: list[Dataset], count: int, folder: Path) -> list[Photo]:
    """`count` distractor photos, each its own item: the other datasets' photos, then
    seeded variants of them."""
    sources = [p for d in others for p in d.catalog + d.queries]
    out = [
        Photo(p.path, f"distractor:{d.name}:{p.key}", "", "catalog")
        for d in others
        for p in d.catalog + d.queries
    ]
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    number = 0
    while len(out) < count:
        source = sources[number % len(sources)]
        path = folder / f"variant-{number:05d}.jpg"
        if not path.is_file():
            image = Image.open(source.path).convert("RGB")
            w, h = image.size
            scale = rng.uniform(0.6, 0.95)
            cw, ch = int(w * scale), int(h * scale)
            x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
            image = image.crop((x, y, x + cw, y + ch))
            if rng.random() < 0.5:
                image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            image = image.rotate(float(rng.uniform(-12, 12)), fillcolor=(128, 128, 128))
            image = ImageEnhance.Color(image).enhance(float(rng.uniform(0.5, 1.5)))
            image = ImageEnhance.Brightness(image).enhance(float(rng.uniform(0.7, 1.3)))
            image.save(path, "JPEG", quality=88)
        out.append(Photo(path, f"distractor:variant:{number}", "", "catalog"))
        number += 1
    return out[:count]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="efficientnet-lite0-colour")
    parser.add_argument("--datasets", default="smvs_dvd_covers,lego_minifigs_kaggle_subset")
    parser.add_argument("--sizes", default="1000,10000")
    args = parser.parse_args()
    every = [load_dataset(p) for p in discover(DEFAULT_ROOT)]
    extractor = make_extractor(args.model, CACHE / "models", local=False)
    service = ServiceDescriptors(exported_model(args.model, CACHE / "models"), CACHE / "cache")
    print(f"load average {os.getloadavg()[0]:.2f}", flush=True)
    print(
        "| dataset | catalog items | words | fingerprint top 10 / 20 / 50 | regions top 10 / 20"
        " | top 10 + regions 5 (shipped) | top 10 + regions 10 | top 20 + regions 10 | seconds |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name in args.datasets.split(","):
        dataset = next(d for d in every if d.name == name)
        others = [d for d in every if d.name != name]
        for size in (int(s) for s in args.sizes.split(",")):
            started = time.monotonic()
            # Per evaluated dataset: a variant must never be of one of its own photos.
            folder = CACHE / "distractors" / name
            extra = distractors(others, size - len(dataset.catalog_items), folder)
            catalog = dataset.catalog + extra
            vectors = np.stack(
                [
                    f.fingerprints[0]
                    for f in compute(extractor, catalog, CACHE / "cache", local=False)
                ]
            )
            grids = service.grids(catalog, 0)
            book = train(grids, CodebookRule(), version=1)
            bags = {str(i): bag_of(book, g) for i, g in enumerate(grids)}
            owners = [p.item for p in catalog]
            queries = compute(extractor, dataset.queries, CACHE / "cache", local=False)
            views = service.grids(dataset.queries, 0)
            hits = {k: 0 for k in ("g10", "g20", "g50", "r10", "r20", "s5", "u10", "u20")}
            for photo, feats, view in zip(dataset.queries, queries, views, strict=True):
                sims = vectors @ feats.fingerprints[0]
                order: list[str] = []
                for i in np.argsort(-sims):
                    if owners[i] not in order:
                        order.append(owners[i])
                    if len(order) >= max(DEPTHS):
                        break
                region: list[str] = []
                for key, _ in rank_photos([bag_of(book, query_views([view])[0])], bags, 60):
                    if owners[int(key)] not in region:
                        region.append(owners[int(key)])
                truth = photo.item
                hits["g10"] += truth in order[:10]
                hits["g20"] += truth in order[:20]
                hits["g50"] += truth in order[:50]
                hits["r10"] += truth in region[:10]
                hits["r20"] += truth in region[:20]
                beyond = [i for i in region if i not in order[:10]]
                hits["s5"] += truth in order[:10] or truth in beyond[:5]
                hits["u10"] += truth in order[:10] or truth in beyond[:10]
                hits["u20"] += (
                    truth in order[:20] or truth in [i for i in region if i not in order[:20]][:10]
                )
            n = len(dataset.queries)
            r = {k: v / n for k, v in hits.items()}
            cells = [
                name,
                str(len(set(owners))),
                str(book.words),
                f"{r['g10']:.3f} / {r['g20']:.3f} / {r['g50']:.3f}",
                f"{r['r10']:.3f} / {r['r20']:.3f}",
                f"{r['s5']:.3f}",
                f"{r['u10']:.3f}",
                f"{r['u20']:.3f}",
                f"{time.monotonic() - started:.0f}",
            ]
            print(
                "| " + " | ".join(cells) + " |",
                flush=True,
            )


if __name__ == "__main__":
    main()
