"""Benchmark: copies caught without any model. Every catalog photo of ../shared/datasets,
every robustness-suite copy of it (tools/quality/robustness.py: the 12 near-duplicate
transforms and the 4 that are not) and the near_duplicates dataset's query photos go into
a real catalog, each as an item of its own, through ImportItems; then one FindCopies
(catalog's perceptual-hash report; search and the embedder are not running, so this is
what the duplicate report finds when the model is random or replaced).

Reports, per transform, the copies not paired with their source (false negatives) by the
hashes alone and by the whole report (hashes, then the pixel check of copy_check.py), the
pairs of different pictures reported (false positives) by each, the hashing cost per
photo, and the matching time at larger catalog sizes (random hashes, 44 views each, in
process).

    make bench-copies        # = .venv/bin/python bench/copies.py
    .venv/bin/python bench/copies.py --max-distance 31 --sizes 10000,50000

Starts its own embedded PostgreSQL, NATS and catalog process in a temp dir."""

import argparse
import os
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

import grpc
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from import_images import start_catalog  # noqa: E402

from photosearch.catalog.v1 import catalog_pb2, catalog_pb2_grpc  # noqa: E402
from photosearch_catalog import copy_hash  # noqa: E402
from photosearch_catalog.copy_hash import HASH_BYTES, VIEW_NAMES  # noqa: E402
from photosearch_catalog.copy_matching import find_matches  # noqa: E402
from photosearch_devstack.nats_server import NatsServer  # noqa: E402
from photosearch_devstack.postgres import EmbeddedPostgres  # noqa: E402
from tools.quality.datasets import discover, load_dataset  # noqa: E402
from tools.quality.robustness import NEAR_DUPLICATE, TRANSFORMS, make_copies  # noqa: E402

MAX_MESSAGE = 64 * 1024 * 1024


def photos(root: Path) -> tuple[list[tuple[str, str, bytes]], dict[str, str]]:
    """(key, kind, bytes) for every photo to import, and each copy's source key."""
    datasets = [load_dataset(p) for p in discover(root)]
    entries: list[tuple[str, str, bytes]] = []
    source_of: dict[str, str] = {}
    sources = []
    for d in datasets:
        for p in d.catalog:
            key = f"{d.name}/{p.item}/{p.path.name}"
            entries.append((key, "catalog", p.path.read_bytes()))
            sources.append((d.name, p))
        if d.name == "near_duplicates":
            by_item = {p.item: f"{d.name}/{p.item}/{p.path.name}" for p in d.catalog}
            for q in d.queries:
                key = f"{d.name}/query/{q.path.name}"
                entries.append((key, f"near_duplicates:{q.view}", q.path.read_bytes()))
                source_of[key] = by_item[q.item]
    for c in make_copies(sources):
        key = f"copy/{c.key}"
        entries.append((key, c.transform, c.data))
        source_of[key] = f"{c.dataset}/{c.source.item}/{c.source.path.name}"
    return entries, source_of


def import_all(stub, entries) -> dict[str, str]:
    """Import each photo as its own item; image id -> key."""

    def records():
        for key, _, data in entries:
            yield catalog_pb2.ImportRecord(
                import_key=key,
                item=catalog_pb2.Item(name=key),
                images=[catalog_pb2.ImportImage(data=data, filename=Path(key).name)],
            )

    summary = stub.ImportItems(records(), timeout=3600)
    assert summary.images_added == len(entries) and not summary.errors, summary
    key_of_item: dict[str, str] = {}
    token = ""
    while True:
        page = stub.ListItems(catalog_pb2.ListItemsRequest(page_size=500, page_token=token))
        key_of_item.update({i.id: i.import_key for i in page.items})
        token = page.next_page_token
        if not token:
            break
    return key_of_item


def wait_hashed(stub, images: int, timeout: float = 1800) -> float:
    """Seconds until the copy hasher has hashed every image."""
    started = time.perf_counter()
    while True:
        counts = stub.FindCopies(catalog_pb2.FindCopiesRequest(limit=1), timeout=600)
        if counts.images == images and counts.unhashed == 0:
            return time.perf_counter() - started
        if time.perf_counter() - started > timeout:
            raise TimeoutError(f"{counts.unhashed} images still unhashed")
        time.sleep(0.5)


def scaling(sizes: list[int], max_distance: int) -> list[tuple[int, float]]:
    rng = np.random.default_rng(0)
    out = []
    for n in sizes:
        views = rng.integers(0, 256, (n, len(VIEW_NAMES), HASH_BYTES), dtype=np.uint8)
        owners = np.arange(n, dtype=np.int64)
        started = time.perf_counter()
        find_matches(views, owners, max_distance, 1000)
        out.append((n, time.perf_counter() - started))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--datasets-root", type=Path, default=ROOT.parent / "shared" / "datasets")
    parser.add_argument("--max-distance", type=int, default=0, help="0: PDQ's 31")
    parser.add_argument("--sizes", default="10000,50000", help="catalog sizes to time matching")
    args = parser.parse_args()
    load = os.getloadavg()
    entries, source_of = photos(args.datasets_root)
    kinds = {key: kind for key, kind, _ in entries}
    sample = [data for _, kind, data in entries if kind == "catalog"]
    hash_ms = {}
    for side in (512, copy_hash.HASH_SIDE):  # side by side: the working size's cost
        default, copy_hash.HASH_SIDE = copy_hash.HASH_SIDE, side
        started = time.perf_counter()
        for data in sample:
            copy_hash.hash_image(data, 64 * 1024 * 1024, 100_000_000)
        hash_ms[side] = (time.perf_counter() - started) / len(sample) * 1000
        copy_hash.HASH_SIDE = default

    with tempfile.TemporaryDirectory(prefix="bench-copies-") as tmp:
        root = Path(tmp)
        pg = EmbeddedPostgres(root / "pg").start()
        nats = NatsServer(root / "nats").start()
        process, address = start_catalog(pg, nats, root / "catalog.log")
        try:
            options = [("grpc.max_receive_message_length", MAX_MESSAGE)]
            with grpc.insecure_channel(address, options=options) as channel:
                stub = catalog_pb2_grpc.CatalogServiceStub(channel)
                t0 = time.perf_counter()
                key_of_item = import_all(stub, entries)
                import_s = time.perf_counter() - t0
                t0 = time.perf_counter()
                hashed_s = wait_hashed(stub, len(entries)) + import_s
                t0 = time.perf_counter()
                report = stub.FindCopies(
                    catalog_pb2.FindCopiesRequest(max_distance=args.max_distance, limit=10**6),
                    timeout=600,
                )
                report_s = time.perf_counter() - t0
        finally:
            process.terminate()
            process.wait(30)
            nats.stop()
            pg.stop(mode="fast")

    def origin(key: str) -> str:
        return source_of.get(key, key)

    found: set[frozenset[str]] = set()
    by_hash: set[frozenset[str]] = set()
    false_pairs = []
    for p in report.pairs:
        a, b = key_of_item[p.item_id_a], key_of_item[p.item_id_b]
        found.add(frozenset((a, b)))
        if p.found_by == "hash":
            by_hash.add(frozenset((a, b)))
        if origin(a) != origin(b):
            false_pairs.append((a, b, p.distance, p.view, p.found_by))
    copies = Counter(kinds[k] for k in source_of)
    missed: dict[str, list[str]] = defaultdict(list)
    missed_by_hash: dict[str, list[str]] = defaultdict(list)
    for key, source in source_of.items():
        if frozenset((key, source)) not in found:
            missed[kinds[key]].append(key)
        if frozenset((key, source)) not in by_hash:
            missed_by_hash[kinds[key]].append(key)

    print(f"load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; "
          f"after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")  # fmt: skip
    print(
        f"{len(entries)} photos imported in {import_s:.1f} s, all hashed {hashed_s:.1f} s after "
        f"the import began; hashing alone per catalog photo "
        f"{', '.join(f'{ms:.1f} ms at {side} px' for side, ms in hash_ms.items())} (serving: "
        f"{copy_hash.HASH_SIDE} px); FindCopies over {report.images} images in {report_s:.2f} s, "
        f"within {report.max_distance} bits: {len(report.pairs)} pairs "
        f"({sum(p.found_by == 'pixels' for p in report.pairs)} by the pixel check, "
        f"{report.unchecked} candidate pairs left unchecked)"
    )
    near = [t for t in TRANSFORMS if t in NEAR_DUPLICATE] + sorted(
        k for k in copies if k.startswith("near_duplicates:")
    )
    print("\n| copies | near-duplicate | copies | missed by the hashes | missed by the report "
          "| examples |\n|---|---|---:|---:|---:|---|")  # fmt: skip
    for kind in near + [t for t in TRANSFORMS if t not in NEAR_DUPLICATE]:
        is_near = kind in NEAR_DUPLICATE or kind.startswith("near_duplicates:")
        print(f"| {kind} | {'yes' if is_near else 'no'} | {copies[kind]} | "
              f"{len(missed_by_hash[kind])} | {len(missed[kind])} | "
              f"{', '.join(m.split('/')[-1] for m in missed[kind][:2])} |")  # fmt: skip
    near_total = sum(copies[k] for k in near)
    near_missed = sum(len(missed[k]) for k in near)
    hash_missed = sum(len(missed_by_hash[k]) for k in near)
    print(f"\nnear-duplicate false negatives: {near_missed} of {near_total} "
          f"(the hashes alone: {hash_missed})")  # fmt: skip
    print(f"pairs of different pictures reported (false positives): {len(false_pairs)} "
          f"({sum(p[4] == 'pixels' for p in false_pairs)} by the pixel check)")  # fmt: skip
    near_kinds = {"catalog", *NEAR_DUPLICATE, *(k for k in copies if k.startswith("near_"))}
    among_near = [p for p in false_pairs if kinds[p[0]] in near_kinds and kinds[p[1]] in near_kinds]
    print(f"  of which between catalog photos and near-duplicate copies: {len(among_near)}")
    for a, b, d, view, by in among_near[:10]:
        print(f"  {a} ~ {b}: {d} bits ({view}, {by})")
    print("  the others (copies that are mostly the same background or page):")
    for a, b, d, view, by in false_pairs[:10]:
        print(f"  {a} ~ {b}: {d} bits ({view}, {by})")
    sizes = [int(s) for s in args.sizes.split(",") if s]
    if sizes:
        print("\n| images (random hashes) | FindCopies matching, s |\n|---:|---:|")
        for n, seconds in scaling(sizes, args.max_distance or 31):
            print(f"| {n:,} | {seconds:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
