"""Benchmark: the pixel check's threshold, chosen on one half of the photos and measured on
the other (item-disjoint folds: a source photo and all its copies fall in the same one).

The photos are bench/copies.py's: every catalog photo of ../shared/datasets, its
robustness-suite copies and the near_duplicates queries, each an item of its own, hashed
in process with the serving scheme (copy_hash.hash_image: PDQ views and the pixel check's
features). Each fold is a catalog of its own: hash matches at PDQ's 31 bits, then the
pixel check's candidates (copy_check.candidates) scored in full.

The rule that picks the threshold on a fold: the smallest value (in steps of 0.005) above
every score of a candidate pair of different pictures among the catalog photos and their
near-duplicate copies, i.e. the check may add no false pair there. Pairs between the
"pasted" and "strip" copies (mostly the same background or page) do not count for the
rule; they are counted in the table. The serving value is the same rule on all photos.

    .venv/bin/python bench/copy_check.py"""

import argparse
import hashlib
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from copies import photos  # noqa: E402

from photosearch_catalog import copy_check, copy_features, copy_hash  # noqa: E402
from photosearch_catalog.copy_matching import find_matches  # noqa: E402
from tools.quality.robustness import NEAR_DUPLICATE  # noqa: E402

STEP = 0.005


def is_near(kind: str) -> bool:
    return kind in NEAR_DUPLICATE or kind.startswith("near_duplicates:")


class Catalog:
    """One fold's photos, hash matches and fully scored candidate pairs."""

    def __init__(self, members, views, features, origin, kinds):
        self.members, self.origin, self.kinds = members, origin, kinds
        owners = np.arange(len(members), dtype=np.int64)
        sub = np.ascontiguousarray(views[members])
        self.by_hash = {
            (min(members[m.a], members[m.b]), max(members[m.a], members[m.b]))
            for m in find_matches(sub, owners, copy_hash.DEFAULT_MATCH_DISTANCE, 10**9)
        }
        feats = [features[i] for i in members]
        colours = np.stack([f.colour for f in feats])
        started = time.perf_counter()
        pairs = copy_check.candidates(np.ascontiguousarray(sub[:, 0]), colours, owners)
        self.candidates_s = time.perf_counter() - started
        self.scores = {}
        started = time.perf_counter()
        for i, j in pairs:
            key = (min(members[i], members[j]), max(members[i], members[j]))
            if key not in self.by_hash:
                self.scores[key] = copy_check.similarity(feats[i], feats[j], enough=math.inf)[0]
        self.score_s = time.perf_counter() - started
        self.pairs = len(pairs)

    def chosen(self) -> float:
        """The rule: just above every near-duplicate-kind false pair's score."""
        worst = max(
            (s for p, s in self.scores.items() if self.false(p) and self.among_near(p)),
            default=-1.0,
        )
        return round((math.floor(worst / STEP) + 1) * STEP, 3)

    def false(self, p) -> bool:
        return self.origin[p[0]] != self.origin[p[1]]

    def among_near(self, p) -> bool:
        return all(self.kinds[i] == "catalog" or is_near(self.kinds[i]) for i in p)

    def evaluate(self, threshold: float | None, source_of_index: dict[int, int]):
        found = set(self.by_hash)
        if threshold is not None:
            found |= {p for p, s in self.scores.items() if s >= threshold}
        near = [i for i in self.members if i in source_of_index and is_near(self.kinds[i])]
        missed = [
            i for i in near
            if (min(i, source_of_index[i]), max(i, source_of_index[i])) not in found
        ]  # fmt: skip
        false = [p for p in found if self.false(p)]
        return len(near), missed, len(false), sum(1 for p in false if self.among_near(p))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--datasets-root", type=Path, default=ROOT.parent / "shared" / "datasets")
    args = parser.parse_args()
    load = os.getloadavg()
    entries, source_of = photos(args.datasets_root)
    started = time.perf_counter()
    hashed = [copy_hash.hash_image(data, 64 << 20, 100_000_000) for _, _, data in entries]
    hash_s = time.perf_counter() - started
    keys = [key for key, _, _ in entries]
    kinds = [kind for _, kind, _ in entries]
    index = {key: n for n, key in enumerate(keys)}
    origin = [source_of.get(key, key) for key in keys]
    source_index = {index[k]: index[s] for k, s in source_of.items()}
    views = np.stack([np.frombuffer(h.views, np.uint8).reshape(-1, 32) for h in hashed])
    features = [copy_features.unpack(h.features) for h in hashed]
    fold = [int(hashlib.sha256(o.encode()).hexdigest(), 16) % 2 for o in origin]
    folds = [
        Catalog([n for n in range(len(keys)) if fold[n] == f], views, features, origin, kinds)
        for f in (0, 1)
    ]
    size = np.mean([len(h.features) for h in hashed])
    print(f"load average {load[0]:.2f}; {len(entries)} photos hashed in {hash_s:.0f} s "
          f"(features {size / 1024:.1f} KB per photo)")  # fmt: skip
    for name, c in zip("AB", folds, strict=True):
        print(f"fold {name}: {len(c.members)} photos, {c.pairs} candidate pairs in "
              f"{c.candidates_s:.2f} s, scored in {c.score_s:.1f} s")  # fmt: skip
    print(
        "\n| threshold chosen on | applied to | threshold | near-duplicates | missed "
        "| false pairs (of them among near-duplicate kinds) | missed examples |"
    )
    print("|---|---|---:|---:|---:|---:|---|")
    for train, test in ((0, 1), (1, 0), (None, 0), (None, 1)):
        threshold = folds[train].chosen() if train is not None else None
        near, missed, false, false_near = folds[test].evaluate(threshold, source_index)
        label = "AB"[train] if train is not None else "hashes alone"
        shown = f"{threshold:.3f}" if threshold is not None else "-"
        examples = ", ".join(kinds[i] for i in missed[:4])
        print(f"| {label} | {'AB'[test]} | {shown} | {near} | {len(missed)} | {false} "
              f"({false_near}) | {examples} |")  # fmt: skip
    for c in folds:
        _, missed, _, _ = c.evaluate(None, source_index)
        for i in missed:
            pair = (min(i, source_index[i]), max(i, source_index[i]))
            print(f"  missed by the hashes: {kinds[i]} ({keys[i]}), pixel score "
                  f"{c.scores.get(pair, float('nan')):.4f}")  # fmt: skip
    whole = Catalog(list(range(len(keys))), views, features, origin, kinds)
    print(f"\nthe rule on all {len(keys)} photos: {whole.chosen():.3f} "
          f"(serving: copy_check.PIXEL_MATCH = {copy_check.PIXEL_MATCH})")  # fmt: skip
    near, missed, false, false_near = whole.evaluate(copy_check.PIXEL_MATCH, source_index)
    print(f"serving threshold on all photos: {len(missed)} of {near} near-duplicates missed, "
          f"{false} false pairs ({false_near} among near-duplicate kinds)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
