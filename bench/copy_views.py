"""Study: which extra hash families would close the copies PDQ's views still miss, chosen
on one half of the source photos and checked on the other (item-disjoint folds).

The photos are bench/copies.py's: every catalog photo of ../shared/datasets, its
robustness-suite copies and the near_duplicates queries. Each is hashed in process with
the serving scheme (copy_hash.hash_picture: 44 views) plus candidate families fixed in
advance from PDQ's known weak spots, not from the missed photos:

- "small turns": views of the photo turned by 3 and 6 degrees either way (centre 90 %,
  so no corner of the turn shows), matched like the other views;
- "64 px": a second canonical hash of the picture reduced to 64 px (area average), matched
  against the others' "64 px" hashes (what survives heavy resizing and re-encoding);
- "equalised": a second canonical hash of the grey picture after histogram equalisation,
  matched against the others' (what survives tone curves and clipping).

For every combination it reports, per fold, the near-duplicates missed and the pairs of
different pictures reported, at PDQ's 31 bits. Nothing here changes what catalog serves.

    .venv/bin/python bench/copy_views.py"""

import argparse
import hashlib
import itertools
import os
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from copies import photos  # noqa: E402

from photosearch.common.images import WHITE, decode_image  # noqa: E402
from photosearch_catalog import copy_hash  # noqa: E402
from photosearch_catalog.copy_hash import DEFAULT_MATCH_DISTANCE, HASH_SIDE, _pdq  # noqa: E402
from photosearch_catalog.copy_matching import find_matches  # noqa: E402
from tools.quality.robustness import NEAR_DUPLICATE  # noqa: E402

TURNS = (-6.0, -3.0, 3.0, 6.0)
FAMILIES = ("small turns", "64 px", "equalised")


def picture(data: bytes) -> Image.Image:
    decoded = decode_image(
        data, max_bytes=64 << 20, max_pixels=100_000_000, background=WHITE,
        draft_size=(HASH_SIDE, HASH_SIDE),
    )  # fmt: skip
    image = decoded.image.convert("RGB")
    image.thumbnail((HASH_SIDE, HASH_SIDE), Image.Resampling.BILINEAR)
    return image


def turned(image: Image.Image, degrees: float) -> Image.Image:
    return copy_hash._centre_crop(image.rotate(degrees, Image.Resampling.BILINEAR), 0.9)


def hashes(data: bytes) -> dict[str, np.ndarray]:
    """Every family's hashes of one photo: n_views x 32 bytes each."""
    image = picture(data)
    base = copy_hash.hash_picture(image).views
    out = {"serving": np.frombuffer(base, np.uint8).reshape(-1, 32)}
    out["small turns"] = np.stack(
        [np.frombuffer(_pdq(turned(image, d))[0], np.uint8) for d in TURNS]
    )
    small = image.copy()
    small.thumbnail((64, 64), Image.Resampling.BOX)
    out["64 px"] = np.frombuffer(_pdq(small)[0], np.uint8)[None]
    grey = ImageOps.equalize(image.convert("L")).convert("RGB")
    out["equalised"] = np.frombuffer(_pdq(grey)[0], np.uint8)[None]
    return out


def pairs(views: np.ndarray, owners: np.ndarray) -> set[tuple[int, int]]:
    found = find_matches(views, owners, DEFAULT_MATCH_DISTANCE, 10**9)
    return {(min(m.a, m.b), max(m.a, m.b)) for m in found}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--datasets-root", type=Path, default=ROOT.parent / "shared" / "datasets")
    args = parser.parse_args()
    load = os.getloadavg()
    entries, source_of = photos(args.datasets_root)
    started = time.perf_counter()
    hashed = [hashes(data) for _, _, data in entries]
    hash_s = time.perf_counter() - started
    keys = [key for key, _, _ in entries]
    kinds = [kind for _, kind, _ in entries]
    index = {key: n for n, key in enumerate(keys)}
    origin = [source_of.get(key, key) for key in keys]
    owners = np.arange(len(entries), dtype=np.int64)  # every photo an item of its own
    # Folds by source photo: a source and all its copies fall in the same one.
    fold = [int(hashlib.sha256(o.encode()).hexdigest(), 16) % 2 for o in origin]

    serving = np.stack([h["serving"] for h in hashed])
    with_turns = np.concatenate([serving, np.stack([h["small turns"] for h in hashed])], axis=1)
    found = {
        "serving": pairs(serving, owners),
        "small turns": pairs(with_turns, owners),
        "64 px": pairs(np.stack([h["64 px"] for h in hashed]), owners),
        "equalised": pairs(np.stack([h["equalised"] for h in hashed]), owners),
    }
    near = [
        n for n, kind in enumerate(kinds)
        if keys[n] in source_of and (kind in NEAR_DUPLICATE or kind.startswith("near_duplicates:"))
    ]  # fmt: skip
    print(f"load average {load[0]:.2f}; {len(entries)} photos hashed in {hash_s:.0f} s")
    print("\n| families added | fold | near-duplicates | missed | false pairs | missed examples |")
    print("|---|---|---:|---:|---:|---|")
    for size in range(len(FAMILIES) + 1):
        for combo in itertools.combinations(FAMILIES, size):
            union = set(found["serving"])
            for family in combo:
                union |= found[family]
            for f in (0, 1):
                mine = [n for n in near if fold[n] == f]
                missed = [n for n in mine if tuple(sorted((n, index[origin[n]]))) not in union]
                false = sum(
                    1 for a, b in union
                    if origin[a] != origin[b] and fold[a] == f
                )  # fmt: skip
                examples = ", ".join(f"{kinds[n]}" for n in missed[:4])
                label = " + ".join(combo) or "none (serving)"
                row = [label, "AB"[f], len(mine), len(missed), false, examples]
                print("| " + " | ".join(str(v) for v in row) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
