"""Cross-validated choice of search's tunables on the shared datasets, offline, with the
services' own code (tools/quality/evidence.py, tuning.py):

    .venv/bin/python -m tools.quality.cv                       # 2 folds, seed 0
    .venv/bin/python -m tools.quality.cv --folds 3 --seeds 0,1,2

Prints each held-out fold's figures, the parameters each fold chose, and the parameters
chosen on every item (what search ships)."""

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from tools.quality.datasets import DEFAULT_ROOT, discover, load_dataset
from tools.quality.evidence import gather
from tools.quality.features import exported_model, make_extractor
from tools.quality.service_rerank import ServiceDescriptors
from tools.quality.tuning import choose, cross_validate, summary

ROOT = Path(__file__).resolve().parents[2]
DATASETS = "smvs_dvd_covers,coil100,lego_minifigs_kaggle_subset"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="efficientnet-lite0-colour")
    parser.add_argument("--datasets-root", type=Path, default=DEFAULT_ROOT)
    parser.add_argument("--datasets", default=DATASETS)
    parser.add_argument("--folds", type=int, default=2)
    parser.add_argument("--seeds", default="0")
    args = parser.parse_args()
    cache = ROOT / "results" / "quality"
    names = args.datasets.split(",")
    datasets = [load_dataset(p) for p in discover(args.datasets_root) if p.name in names]
    extractor = make_extractor(args.model, cache / "models", local=False)
    service = ServiceDescriptors(exported_model(args.model, cache / "models"), cache / "cache")
    started = time.monotonic()
    queries = gather(extractor, service, datasets, cache / "cache")
    print(f"evidence of {len(queries)} queries: {time.monotonic() - started:.0f} s", flush=True)
    for seed in (int(s) for s in args.seeds.split(",")):
        held, chosen = cross_validate(queries, args.folds, seed)
        print(f"seed {seed}, {args.folds} folds, held out:")
        print(json.dumps(summary([h.scored() for h in held]), indent=1, default=float))
        for fold, params in enumerate(chosen):
            print(f"  fold {fold} chose {params}")
    print("chosen on every item:", choose(queries))


if __name__ == "__main__":
    main()
