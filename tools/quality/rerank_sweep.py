"""How search should turn local evidence into a score: the evidence of every query's
top candidates is computed once (the services' own descriptors and matcher, as
`service-rerank`), then scoring rules are compared on it, every dataset side by side.

    .venv/bin/python -m tools.quality.rerank_sweep --model efficientnet-lite0-colour
    .venv/bin/python -m tools.quality.rerank_sweep --iterations 100 --min-similarity 0.6

Rule: score = global + weight * min(inliers, saturate) / saturate, counting only
candidates with at least `min_inliers` verified matches; the turned query views either
always count, or only when the photo as taken verified no candidate with `turned_below`
inliers."""

import os

# As the search service runs (photosearch_search/__main__.py), so matching times compare.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import itertools
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from photosearch_search.domain import Candidate
from photosearch_search.matching import MatchSettings
from photosearch_search.rerank import (
    Evidence,
    RerankSettings,
    StoredPhoto,
    item_evidence,
    query_views,
    rescore,
)
from tools.quality.datasets import DEFAULT_ROOT, discover, load_dataset
from tools.quality.features import exported_model, make_extractor
from tools.quality.offline import Technique, prepare
from tools.quality.rerank import global_item_scores, top_items
from tools.quality.service_rerank import QUERY_ROTATIONS, ServiceDescriptors

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class QueryEvidence:
    truth: str
    scores: dict[str, float]  # global item scores
    per_view: list[dict[str, int]]  # top-k candidates' verified inliers, view by view
    upright_ms: float  # matching the photo as taken against the candidates (one thread)

    def inliers(self, turned_below: int) -> dict[str, int]:
        """Best over the views; with `turned_below`, the turned views only count when the
        photo as taken verified no candidate with that many inliers (search's rule)."""
        if turned_below and max(self.per_view[0].values(), default=0) >= turned_below:
            return self.per_view[0]
        return {i: max(v.get(i, 0) for v in self.per_view) for i in self.per_view[0]}


def gather(
    model: str, dataset_name: str, top_k: int, match: MatchSettings | None = None
) -> list[QueryEvidence]:
    match = match or MatchSettings()
    cache = ROOT / "results" / "quality"
    (path,) = [p for p in discover(DEFAULT_ROOT) if p.name == dataset_name]
    dataset = load_dataset(path)
    extractor = make_extractor(model, cache / "models", local=False)
    service = ServiceDescriptors(exported_model(model, cache / "models"), cache / "cache")
    prepared = prepare(extractor, dataset, Technique("global"), cache / "cache")
    vectors = np.concatenate([f.fingerprints[:1] for f in prepared.catalog])
    owners = [p.item for p in dataset.catalog]
    photos: dict[str, list[StoredPhoto]] = {}
    for number, (photo, grid) in enumerate(
        zip(dataset.catalog, service.grids(dataset.catalog, 0), strict=True)
    ):
        photos.setdefault(photo.item, []).append(StoredPhoto(str(number), grid))
    views = [service.grids(dataset.queries, angle) for angle in QUERY_ROTATIONS]
    out = []
    for number, (photo, feats) in enumerate(zip(dataset.queries, prepared.queries, strict=True)):
        scores = global_item_scores(feats[0].fingerprints[0], vectors, owners)
        top = {item: photos[item] for item in top_items(scores, top_k)}
        query = query_views([v[number] for v in views])
        per_view, view_ms = [], []
        for view in query:
            started = time.process_time()
            evidence = item_evidence([view], top, match)
            view_ms.append((time.process_time() - started) * 1000)
            per_view.append({i: e.inliers for i, e in evidence.items()})
        out.append(QueryEvidence(photo.item, scores, per_view, view_ms[0]))
    return out


def recall_at_1(
    queries: list[QueryEvidence], weight: float, saturate: int, floor: int, turned_below: int
) -> float:
    """Search's own scoring (`rescore`) with these settings, on the gathered evidence."""
    right = 0
    for q in queries:
        ranked = sorted(q.scores.items(), key=lambda kv: (-kv[1], kv[0]))
        candidates = [Candidate(item, "", score) for item, score in ranked]
        evidence = {i: Evidence(0, n) for i, n in q.inliers(turned_below).items()}
        settings = RerankSettings(
            top_k=len(candidates), saturate=saturate, weight=weight, min_inliers=floor
        )
        right += rescore(candidates, evidence, settings)[0].item_id == q.truth
    return right / len(queries)


def skipped_share(queries: list[QueryEvidence], turned_below: int) -> float:
    """Queries whose turned views search would not match."""
    if not turned_below:
        return 0.0
    skipped = sum(max(q.per_view[0].values(), default=0) >= turned_below for q in queries)
    return skipped / len(queries)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="efficientnet-lite0-colour")
    parser.add_argument("--datasets", default="smvs_dvd_covers,coil100,lego_minifigs_kaggle_subset")
    parser.add_argument("--top-k", type=int, default=20)
    parser.add_argument("--weights", default="0.25,0.5,1.0")
    parser.add_argument("--saturate", default="15,30,60")
    parser.add_argument("--floors", default="0,4,6,8,10,12")
    parser.add_argument(
        "--turned-below",
        default="0,15",
        help="turned views count only when the upright one verifies fewer inliers (0: always)",
    )
    parser.add_argument("--iterations", type=int, default=MatchSettings.iterations)
    parser.add_argument("--min-similarity", type=float, default=MatchSettings.min_similarity)
    args = parser.parse_args()
    names = args.datasets.split(",")
    match = MatchSettings(min_similarity=args.min_similarity, iterations=args.iterations)
    data = {name: gather(args.model, name, args.top_k, match) for name in names}
    cpu = " | ".join(
        f"{n}: {np.percentile([q.upright_ms for q in data[n]], 50):.1f}" for n in names
    )
    print(f"{match}; matching the photo as taken, CPU ms p50: {cpu}\n")
    print("| weight | saturate | min inliers | turned views | " + " | ".join(names) + " | worst |")
    print("|---" * (5 + len(names)) + "|")
    for weight, saturate, floor, below in itertools.product(
        [float(w) for w in args.weights.split(",")],
        [int(s) for s in args.saturate.split(",")],
        [int(f) for f in args.floors.split(",")],
        [int(b) for b in args.turned_below.split(",")],
    ):
        recalls = [recall_at_1(data[n], weight, saturate, floor, below) for n in names]
        skipped = [skipped_share(data[n], below) for n in names]
        cells = " | ".join(
            f"{r:.3f}" + (f" ({k:.0%} turns skipped)" if below else "")
            for r, k in zip(recalls, skipped, strict=True)
        )
        when = f"if upright < {below}" if below else "always"
        print(f"| {weight} | {saturate} | {floor} | {when} | {cells} | {min(recalls):.3f} |")


if __name__ == "__main__":
    main()
