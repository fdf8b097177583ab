"""Offline replica of the services' re-ranking (technique `service-rerank`): the
embedder's own local graph and preprocessing (local.onnx, the photo's 250 salient
cells; the query also turned 90 and 270 degrees clockwise, as the browser sends it)
and search's own re-ranking code, on the fingerprints offline mode already has. Mesh
mode must give the same rankings (bench/quality.py compares them query by query)."""

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from photosearch.common.local import LocalGrid, from_feature_map, keep_salient
from photosearch.common.model_files import ModelFiles
from photosearch_embedder.preprocess import PreprocessSpec
from photosearch_embedder.runtime import LocalEncoder
from photosearch_embedder.variants import parse_variants
from photosearch_search.domain import Candidate
from photosearch_search.rerank import RerankSettings, StoredPhoto, query_views, rerank
from tools.quality.datasets import Dataset, Photo
from tools.quality.extract import Extractor
from tools.quality.metrics import Ranking, rank_items
from tools.quality.offline import Technique, prepare
from tools.quality.rerank import global_item_scores

# What the browser (and mesh mode) sends: the photo as taken, then turned clockwise.
QUERY_ROTATIONS = (0, 90, 270)


class ServiceDescriptors:
    """Local grids exactly as the embedder makes them, cached per photo set."""

    def __init__(self, files: ModelFiles, cache_dir: Path) -> None:
        self.preprocess = PreprocessSpec.from_json(files.preprocess())
        if self.preprocess.local is None:
            raise ValueError(f"{files.model_id}: the export has no local graph")
        self.encoder = LocalEncoder(files, self.preprocess.local, "cpu")
        self.cache_dir = cache_dir
        manifest = json.loads((files.directory / "manifest.json").read_text())
        self.tag = manifest["files"][self.preprocess.local.onnx]  # the graph's sha256

    def grid(self, data: bytes, degrees: int) -> LocalGrid:
        image = self.preprocess.decode(data, parse_variants([]))
        tensor = self.preprocess.local_tensor(image, degrees)
        return keep_salient(from_feature_map(self.encoder.describe(tensor)))

    def grids(self, photos: Sequence[Photo], degrees: int) -> list[LocalGrid]:
        key = json.dumps([self.tag, degrees, [p.key for p in photos]])
        path = self.cache_dir / f"service-local-{hashlib.sha256(key.encode()).hexdigest()[:16]}.npz"
        if not path.is_file():
            arrays: dict[str, np.ndarray] = {}
            for i, photo in enumerate(photos):
                g = self.grid(photo.path.read_bytes(), degrees)
                arrays[f"s{i}"] = np.asarray([g.rows, g.cols], dtype=np.int32)
                arrays[f"i{i}"], arrays[f"c{i}"] = g.index, g.codes
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp.npz")
            np.savez(tmp, **arrays)  # type: ignore[arg-type]
            tmp.replace(path)
        data = np.load(path)
        return [
            LocalGrid(int(data[f"s{i}"][0]), int(data[f"s{i}"][1]), data[f"i{i}"], data[f"c{i}"])
            for i in range(len(photos))
        ]


def service_scores(
    scores: dict[str, float],
    views: Sequence[LocalGrid],
    photos_of: Callable[[str], list[StoredPhoto]],
    settings: RerankSettings,
) -> dict[str, float]:
    """Item scores after search's re-ranking of the global item scores (ties by item id,
    as search orders them)."""
    ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
    candidates = [Candidate(item, "", score) for item, score in ranked]
    top = {c.item_id: photos_of(c.item_id) for c in candidates[: settings.top_k]}
    out = rerank(candidates, query_views(views), top, settings)
    return {c.item_id: c.score for c in out}


def evaluate_service(
    extractor: Extractor,
    service: ServiceDescriptors,
    dataset: Dataset,
    cache_dir: Path,
    settings: RerankSettings | None = None,
) -> list[Ranking]:
    """Rankings of `dataset`'s queries the way the mesh answers a browser's search."""
    settings = settings or RerankSettings()
    prepared = prepare(extractor, dataset, Technique("global"), cache_dir)
    vectors = np.concatenate([f.fingerprints[:1] for f in prepared.catalog])
    owners = [p.item for p in dataset.catalog]
    catalog = service.grids(dataset.catalog, 0)
    photos: dict[str, list[StoredPhoto]] = {}
    for number, (photo, grid) in enumerate(zip(dataset.catalog, catalog, strict=True)):
        photos.setdefault(photo.item, []).append(StoredPhoto(str(number), grid))
    views = [service.grids(dataset.queries, angle) for angle in QUERY_ROTATIONS]
    rankings = []
    for number, (photo, feats) in enumerate(zip(dataset.queries, prepared.queries, strict=True)):
        scores = global_item_scores(feats[0].fingerprints[0], vectors, owners)
        query = [per_angle[number] for per_angle in views]
        scores = service_scores(scores, query, lambda i: photos.get(i, []), settings)
        rankings.append(rank_items(photo.key, photo.view, photo.item, scores))
    return rankings
