"""Better global candidates, measured one by one with item-disjoint folds: the
fingerprint's own recall@1 and, what re-ranking depends on, whether the right item is
among the fingerprint's top SEARCH_RERANK_TOP_K (candidate recall).

    .venv/bin/python -m tools.quality.global_sweep            # 2 folds, seed 0
    .venv/bin/python -m tools.quality.global_sweep --folds 3 --seeds 0,1,2

Techniques (all model-agnostic, all computed with the embedder's own export):
- extra centre-crop vectors per catalog photo (object-centred views of the index;
  search already keeps several vectors per photo and scores an item by its best);
- the same crops of the query (the best view counts);
- alpha query expansion: the query vector plus its n nearest catalog vectors, each
  weighted by its cosine to the power alpha, re-normalised, searched again;
- with --one-pass: the fingerprint from the region pass's input instead of the 224-px view
  (one_pass.py), for the query alone or for both sides (one backbone pass per photo).

Each fold chooses the technique with the best mean candidate recall over datasets (then
recall@1) on the other folds' items; the held-out fold is answered with that choice.

With --reranked: what each technique gives once search re-ranks (cross-validated as
tools/quality/cv.py, every search tunable chosen on the other folds): the technique's
fingerprint scores replace the gathered ones; items it brings into the candidates that
the gathered evidence lacks count as unverified (their number is printed)."""

import argparse
import itertools
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

from photosearch_embedder.models import spec_for
from tools.quality.datasets import DEFAULT_ROOT, Dataset, Photo, discover, load_dataset
from tools.quality.features import compute, exported_model, make_extractor
from tools.quality.one_pass import one_pass_fingerprints, pass_costs
from tools.quality.rerank import global_item_scores, top_items
from tools.quality.tuning import folds

ROOT = Path(__file__).resolve().parents[2]
DATASETS = "smvs_dvd_covers,coil100,lego_minifigs_kaggle_subset"
CROPS = ("crop:0.8", "crop:0.6")
CANDIDATES = 10  # SEARCH_RERANK_TOP_K as shipped
ONE_PASS = "one pass"  # the variant name of the one-pass fingerprint


@dataclass(frozen=True)
class Technique:
    name: str
    index_crops: tuple[str, ...] = ()
    query_crops: tuple[str, ...] = ()
    expand: int = 0  # nearest catalog vectors added to the query
    alpha: float = 0.0  # their weight: cosine ** alpha
    one_pass: str = ""  # "query" or "both": whose fingerprint comes from the region pass

    @property
    def variants(self) -> tuple[str, ...]:
        return tuple(sorted(set(self.index_crops) | set(self.query_crops)))


@dataclass(frozen=True)
class Query:
    dataset: str
    key: str
    truth: str
    vectors: dict[str, np.ndarray]  # variant ("global", "crop:F") -> unit vector


@dataclass(frozen=True)
class Catalog:
    vectors: dict[str, np.ndarray]  # variant -> (photos, dim)
    owners: list[str]

    def index(self, technique: Technique) -> tuple[np.ndarray, list[str]]:
        names = (ONE_PASS if technique.one_pass == "both" else "global", *technique.index_crops)
        return np.concatenate([self.vectors[n] for n in names]), self.owners * len(names)


def techniques(one_pass: bool = False) -> list[Technique]:
    out = [Technique("fingerprint")]
    if one_pass:
        out.append(Technique("one pass, query", one_pass="query"))
        out.append(Technique("one pass, both", one_pass="both"))
    for crops in ((CROPS[0],), CROPS):
        label = "+".join(c.removeprefix("crop:") for c in crops)
        out.append(Technique(f"index crops {label}", index_crops=crops))
        out.append(Technique(f"query crops {label}", query_crops=crops))
        out.append(Technique(f"both crops {label}", index_crops=crops, query_crops=crops))
    for n, alpha in itertools.product((1, 2, 3, 5), (0.0, 1.0, 3.0)):
        out.append(Technique(f"query expansion n={n} alpha={alpha:g}", expand=n, alpha=alpha))
    return out


def item_scores(query: Query, catalog: Catalog, technique: Technique) -> dict[str, float]:
    vectors, owners = catalog.index(technique)
    first = query.vectors[ONE_PASS if technique.one_pass else "global"]
    views = [first, *(query.vectors[c] for c in technique.query_crops)]
    if technique.expand:
        first = views[0]
        sims = vectors @ first
        nearest = np.argsort(-sims)[: technique.expand]
        weights = np.clip(sims[nearest], 0.0, None) ** technique.alpha
        expanded = first + weights @ vectors[nearest]
        views[0] = expanded / np.linalg.norm(expanded)
    return global_item_scores(np.stack(views), vectors, owners)


def outcomes(queries: Sequence[Query], catalogs: dict[str, Catalog], t: Technique) -> np.ndarray:
    """Per query: (right item first, right item among the candidates)."""
    rows = []
    for q in queries:
        top = top_items(item_scores(q, catalogs[q.dataset], t), CANDIDATES)
        rows.append((top[:1] == [q.truth], q.truth in top))
    return np.asarray(rows, dtype=float).reshape(-1, 2)


def mean_over_datasets(queries: Sequence[Query], hits: np.ndarray) -> np.ndarray:
    names = sorted({q.dataset for q in queries})
    per = [hits[[q.dataset == n for q in queries]].mean(axis=0) for n in names]
    return np.asarray(np.mean(per, axis=0))


def load(
    datasets: Sequence[Dataset], model: str, variants: tuple[str, ...], one_pass: bool = False
) -> tuple[list[Query], dict[str, Catalog]]:
    """With `one_pass`, each photo's one-pass fingerprint too (variant ONE_PASS)."""
    cache = ROOT / "results" / "quality"
    extractor = make_extractor(model, cache / "models", local=one_pass)
    names = ("global", *variants)

    def vectors_of(photos: list[Photo]) -> dict[str, np.ndarray]:
        found = compute(extractor, photos, cache / "cache", variants=variants, local=False)
        stacked = np.stack([p.fingerprints for p in found])  # (photos, variants, dim)
        out = {n: stacked[:, i] for i, n in enumerate(names)}
        if one_pass:
            out[ONE_PASS] = one_pass_fingerprints(
                model, extractor, photos, out["global"], cache / "cache"
            )
        return out

    queries: list[Query] = []
    catalogs = {}
    for d in datasets:
        catalogs[d.name] = Catalog(vectors_of(d.catalog), [p.item for p in d.catalog])
        found = vectors_of(d.queries)
        for i, photo in enumerate(d.queries):
            vectors = {n: v[i] for n, v in found.items()}
            queries.append(Query(d.name, photo.key, photo.item, vectors))
    return queries, catalogs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="efficientnet-lite0-colour")
    parser.add_argument("--datasets-root", type=Path, default=DEFAULT_ROOT)
    parser.add_argument("--datasets", default=DATASETS)
    parser.add_argument("--folds", type=int, default=2)
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--reranked", default="", help="technique names, ';'-separated")
    parser.add_argument(
        "--one-pass", action="store_true", help="also the one-pass fingerprint (one_pass.py)"
    )
    parser.add_argument(
        "--pass-costs",
        type=int,
        default=0,
        metavar="PHOTOS",
        help="also time one pass against two on this many query photos (onnxruntime)",
    )
    args = parser.parse_args()
    names = args.datasets.split(",")
    datasets = [load_dataset(p) for p in discover(args.datasets_root) if p.name in names]
    queries, catalogs = load(datasets, args.model, CROPS, args.one_pass)
    candidates = techniques(args.one_pass)
    hits = {t.name: outcomes(queries, catalogs, t) for t in candidates}
    order = sorted({q.dataset for q in queries})
    print(f"in sample (R@1 / candidate recall@{CANDIDATES}), {len(queries)} queries:")
    print("| technique | " + " | ".join(order) + " |")
    print("|---|" + "---|" * len(order))
    for t in candidates:
        cells = []
        for name in order:
            r1, rk = hits[t.name][[q.dataset == name for q in queries]].mean(axis=0)
            cells.append(f"{r1:.3f} / {rk:.3f}")
        print(f"| {t.name} | " + " | ".join(cells) + " |")
    for seed in (int(s) for s in args.seeds.split(",")):
        fold_of = folds(queries, args.folds, seed)
        of_query = np.asarray([fold_of[(q.dataset, q.truth)] for q in queries])
        held = np.zeros((len(queries), 2))
        for fold in range(args.folds):
            train = [q for q, f in zip(queries, of_query, strict=True) if f != fold]
            mask = of_query != fold

            def merit(
                t: Technique, train: list[Query] = train, mask: np.ndarray = mask
            ) -> tuple[float, float]:
                r1, rk = mean_over_datasets(train, hits[t.name][mask])
                return (float(rk), float(r1))

            chosen = max(candidates, key=merit)
            print(f"seed {seed} fold {fold} chose: {chosen.name}")
            held[of_query == fold] = hits[chosen.name][of_query == fold]
        for name in order:
            r1, rk = held[[q.dataset == name for q in queries]].mean(axis=0)
            print(f"  held out {name}: R@1 {r1:.3f}, candidate recall@{CANDIDATES} {rk:.3f}")
    if args.reranked:
        named = [t for t in candidates if t.name in args.reranked.split(";")]
        reranked(queries, catalogs, named, datasets, args)
    if args.pass_costs:
        print_pass_costs(args.model, datasets, args.pass_costs)


def print_pass_costs(model: str, datasets: Sequence[Dataset], count: int) -> None:
    models = ROOT / "results" / "quality" / "models"
    files = exported_model(model, models)
    local = files.preprocess()["local"]["onnx"]
    photos = [p for d in datasets for p in d.queries]
    chosen = photos[:: max(1, len(photos) // count)][:count]
    extractor = make_extractor(model, models, local=True)
    colour = spec_for(model).colour is not None
    network = exported_model(spec_for(model).family, models).onnx_path if colour else None
    costs = pass_costs(extractor, files.directory / local, chosen, rounds=5, network_onnx=network)
    print(f"one pass against two (onnxruntime, batch 1, {os.cpu_count()} cores):", costs)


def reranked(
    queries: Sequence[Query],
    catalogs: dict[str, Catalog],
    chosen: Sequence[Technique],
    datasets: list[Dataset],
    args: argparse.Namespace,
) -> None:
    from tools.quality.cv import tuned_evidence
    from tools.quality.tuning import cross_validate, summary

    # Gathered on every dataset, as search trains its codebook on the whole catalog.
    everything = [load_dataset(p) for p in discover(args.datasets_root)]
    names = {d.name for d in datasets}
    gathered = [e for e in tuned_evidence(args.model, everything) if e.dataset in names]
    mine = {(q.dataset, q.key): q for q in queries}
    for t in chosen:
        evidence, unseen = [], 0
        for e in gathered:
            scores = item_scores(mine[(e.dataset, e.key)], catalogs[e.dataset], t)
            unseen += sum(i not in e.evidence for i in top_items(scores, CANDIDATES))
            evidence.append(replace(e, scores=scores))
        for seed in (int(s) for s in args.seeds.split(",")):
            held, _ = cross_validate(evidence, args.folds, seed)
            found = summary([h.scored() for h in held])
            cells = [f"{k} {v['r1']:.3f} / {v['candidate_recall']:.3f}" for k, v in found.items()]
            print(f"re-ranked, {t.name}, seed {seed}: " + ", ".join(cells), f"(unseen {unseen})")


if __name__ == "__main__":
    main()
