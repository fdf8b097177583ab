"""Offline mode: the same embedding and scoring code as the mesh path, in-process.

A `Technique` says how catalog and query photos become descriptors and how items are
scored; `evaluate` turns a dataset into rankings, one per query."""

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from tools.quality import compress, salient
from tools.quality.datasets import Dataset
from tools.quality.extract import Extractor, LocalFeatures
from tools.quality.features import PhotoFeatures, compute
from tools.quality.metrics import Ranking, rank_items
from tools.quality.rerank import RerankSettings, global_item_scores, rerank


@dataclass(frozen=True)
class Technique:
    name: str = "global"
    # Extra index-time views of catalog photos, each its own vector ("mirror", "crop:F").
    index_variants: tuple[str, ...] = ()
    # Extra query-time views, the best one counts ("mirror", "crop:F").
    query_variants: tuple[str, ...] = ()
    # Re-rank the global top-k with local descriptors (None = global only).
    rerank: RerankSettings | None = None
    # Long side of the photo for local descriptors (query and catalog).
    long_side: int = 448
    # Query rotations (degrees, counter-clockwise) whose local descriptors are all tried.
    query_rotations: tuple[int, ...] = (0,)
    # Local descriptors projected to this many dimensions (PCA fitted on generic photos)
    # and stored/sent as int8; 0 = float, as the graph gives them.
    local_dim: int = 0
    local_int8: bool = False
    # Keep only this many cells per photo, the highest local contrast (salient.py), on
    # query and catalog side; 0 = every cell.
    local_cells: int = 0
    extra: dict[str, str] = field(default_factory=dict)

    def with_name(self, name: str) -> "Technique":
        return replace(self, name=name)


@dataclass
class Prepared:
    """Descriptors of a dataset's photos under one technique."""

    catalog: list[PhotoFeatures]
    queries: list[list[PhotoFeatures]]  # per query, one entry per rotation


def prepare(
    extractor: Extractor, dataset: Dataset, technique: Technique, cache_dir: Path
) -> Prepared:
    local = technique.rerank is not None
    catalog = compute(
        extractor,
        dataset.catalog,
        cache_dir,
        variants=technique.index_variants,
        local=local,
        long_side=technique.long_side,
    )
    per_rotation = []
    for angle in technique.query_rotations:
        per_rotation.append(
            compute(
                extractor,
                dataset.queries,
                cache_dir,
                variants=technique.query_variants,
                local=local,
                long_side=technique.long_side,
                rotate=angle,
            )
        )
    queries = [list(views) for views in zip(*per_rotation, strict=True)]
    if technique.rerank is not None and technique.local_dim:
        projection = compress.default_projection(extractor, cache_dir, technique.local_dim)
        catalog = [compress.apply(f, projection, technique.local_int8) for f in catalog]
        queries = [
            [compress.apply(f, projection, technique.local_int8) for f in q] for q in queries
        ]
    if technique.rerank is not None and technique.local_cells:
        catalog = [_keep_salient(f, technique.local_cells) for f in catalog]
        queries = [[_keep_salient(f, technique.local_cells) for f in q] for q in queries]
    return Prepared(catalog, queries)


def _keep_salient(features: PhotoFeatures, budget: int) -> PhotoFeatures:
    if features.local is None:
        return features
    return PhotoFeatures(features.fingerprints, salient.keep_salient(features.local, budget))


def evaluate(
    extractor: Extractor, dataset: Dataset, technique: Technique, cache_dir: Path
) -> list[Ranking]:
    prepared = prepare(extractor, dataset, technique, cache_dir)
    vectors = np.concatenate([f.fingerprints for f in prepared.catalog])
    owners = [p.item for p, f in zip(dataset.catalog, prepared.catalog, strict=True)
              for _ in range(len(f.fingerprints))]  # fmt: skip
    by_item: dict[str, list[LocalFeatures]] = {}
    for photo, feats in zip(dataset.catalog, prepared.catalog, strict=True):
        if feats.local is not None:
            by_item.setdefault(photo.item, []).append(feats.local)
    rankings = []
    for photo, views in zip(dataset.queries, prepared.queries, strict=True):
        scores = global_item_scores(views[0].fingerprints, vectors, owners)
        if technique.rerank is not None:
            query_local = [v.local for v in views if v.local is not None]
            scores = rerank(scores, query_local, lambda i: by_item.get(i, []), technique.rerank)
        rankings.append(rank_items(photo.key, photo.view, photo.item, scores))
    return rankings
