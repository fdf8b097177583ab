"""Cross-validated choice of search's tunables on the shared datasets, offline, with the
services' own code (tools/quality/evidence.py, tuning.py):

    .venv/bin/python -m tools.quality.cv                       # 2 folds, seed 0
    .venv/bin/python -m tools.quality.cv --folds 3 --seeds 0,1,2
    .venv/bin/python -m tools.quality.cv --ablation            # one change at a time
    .venv/bin/python -m tools.quality.cv --oracle              # how far the signals go

Prints each held-out fold's figures, the parameters each fold chose, and the parameters
chosen on every item (what search ships). With --ablation: held-out recall@1 and
candidate recall per dataset when one part of the search is taken away or fixed (the
rest still chosen on the other folds)."""

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from photosearch_search.config import SearchSettings
from tools.quality.datasets import DEFAULT_ROOT, Dataset, discover, load_dataset
from tools.quality.evidence import QueryEvidence, gather
from tools.quality.features import exported_model, make_extractor
from tools.quality.service_rerank import ServiceDescriptors
from tools.quality.tuning import FULL, Grid, choose, cross_validate, summary

ROOT = Path(__file__).resolve().parents[2]
# Evidence is gathered on every dataset, as bench/quality.py and the mesh do (the
# region index's codebook is trained on the whole catalog); copies of one photo are no
# catalog of items to choose settings on.
NOT_TUNED = {"near_duplicates"}
ABLATIONS = {
    "everything chosen on the other folds": FULL,
    "no region-index candidates": Grid(regions=(0,)),
    "margin fixed at 0 (inliers still over the best other candidate's)": Grid(margins=(0.0,)),
    "margin 0, region candidates always on": Grid(regions=(5, 10), margins=(0.0,)),
    "inlier floor 10 (instead of chosen)": Grid(min_inliers=(10,)),
    "weight 0.1 only": Grid(weights=(0.1,)),
    "weight 0.5 only": Grid(weights=(0.5,)),
    "re-rank the fingerprint's top 20, no regions": Grid(top_k=(20,), regions=(0,)),
    "re-rank the fingerprint's top 30, no regions": Grid(top_k=(30,), regions=(0,)),
}


def tuned_evidence(model: str, datasets: list[Dataset]) -> list[QueryEvidence]:
    """The evidence settings are chosen on (cached under results/quality/cache)."""
    cache = ROOT / "results" / "quality"
    extractor = make_extractor(model, cache / "models", local=False)
    service = ServiceDescriptors(exported_model(model, cache / "models"), cache / "cache")
    rule = SearchSettings(database_url="").regions().rule
    gathered = gather(extractor, service, datasets, cache / "cache", rule)
    return [q for q in gathered if q.dataset not in NOT_TUNED]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="efficientnet-lite0-colour")
    parser.add_argument("--datasets-root", type=Path, default=DEFAULT_ROOT)
    parser.add_argument("--datasets", default="", help="comma-separated; default: all")
    parser.add_argument("--folds", type=int, default=2)
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--ablation", action="store_true")
    parser.add_argument("--oracle", action="store_true")
    args = parser.parse_args()
    names = set(args.datasets.split(",")) if args.datasets else None
    found = discover(args.datasets_root)
    datasets = [load_dataset(p) for p in found if names is None or p.name in names]
    started = time.monotonic()
    queries = tuned_evidence(args.model, datasets)
    print(f"evidence of {len(queries)} queries: {time.monotonic() - started:.0f} s", flush=True)
    if args.oracle:
        oracle(queries)
        return
    if args.ablation:
        ablation(queries, args.folds, [int(s) for s in args.seeds.split(",")])
        return
    for seed in (int(s) for s in args.seeds.split(",")):
        held, chosen = cross_validate(queries, args.folds, seed)
        print(f"seed {seed}, {args.folds} folds, held out:")
        print(json.dumps(summary([h.scored() for h in held]), indent=1, default=float))
        for fold, params in enumerate(chosen):
            print(f"  fold {fold} chose {params}")
    print("chosen on every item:", choose(queries))


def ablation(queries: list[QueryEvidence], k: int, seeds: list[int]) -> None:
    names = sorted({q.dataset for q in queries})
    print("| change | " + " | ".join(f"{n} R@1 / cand. R" for n in names) + " |")
    print("|---|" + "---|" * len(names))
    for label, grid in ABLATIONS.items():
        rows = [h.scored() for s in seeds for h in cross_validate(queries, k, s, grid)[0]]
        found = summary(rows)
        cells = [f"{found[n]['r1']:.3f} / {found[n]['candidate_recall']:.3f}" for n in names]
        print(f"| {label} | " + " | ".join(cells) + " |", flush=True)


def oracle(queries: list[QueryEvidence]) -> None:
    """Recall@1 if each query took whichever answer is right: the fingerprint's top item
    or the item with the most inliers among all gathered candidates (any view). No
    scoring rule over these two signals can do better."""
    for name in sorted({q.dataset for q in queries}):
        mine = [q for q in queries if q.dataset == name]
        hits = []
        for q in mine:
            fingerprint = q.ranked[0].item_id  # ties by item id, as search
            inliers = {i: max(e.inliers for e in views) for i, views in q.evidence.items()}
            local = min(inliers, key=lambda i: (-inliers[i], i)) if inliers else ""
            hits.append(q.truth in (fingerprint, local))
        print(f"{name}: oracle recall@1 {sum(hits) / len(mine):.3f} ({len(mine)} queries)")


if __name__ == "__main__":
    main()
