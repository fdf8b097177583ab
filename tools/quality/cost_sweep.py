"""Re-rank cost of several techniques side by side: each technique's per-query cost
(`cost.measure`), interleaved over rounds so that a busy moment hurts them alike.

    .venv/bin/python -m tools.quality.cost_sweep smvs_dvd_covers \\
        --technique rerank-rot-64 --technique rerank-rot-64-top250 --rounds 2
"""

import argparse
import json
from pathlib import Path

from tools.quality import cost, techniques
from tools.quality.datasets import DEFAULT_ROOT, load_dataset
from tools.quality.features import make_extractor
from tools.quality.offline import prepare

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / "results" / "quality"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", help="a dataset folder name under ../shared/datasets")
    parser.add_argument("--technique", action="append", required=True)
    parser.add_argument("--model", default="efficientnet-lite0")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    extractor = make_extractor(args.model, CACHE / "models")
    dataset = load_dataset(DEFAULT_ROOT / args.dataset)
    chosen = {name: techniques.CATALOG[name] for name in args.technique}
    prepared = {
        name: prepare(extractor, dataset, technique, CACHE / "cache")
        for name, technique in chosen.items()
    }
    for round_number in range(args.rounds):
        for name, technique in chosen.items():
            measured = cost.measure(prepared[name], technique)
            print(json.dumps({"round": round_number, "technique": name, **measured.to_json()}))


if __name__ == "__main__":
    main()
