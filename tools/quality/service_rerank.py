"""The services' local descriptors, offline (technique `service-rerank`): the
embedder's own local graph and preprocessing (local.onnx, the photo's 250 salient
cells; the query also turned 90 and 270 degrees clockwise, as the browser sends it),
cached per photo set. tools/quality/evidence.py runs search's own code on them; mesh
mode must give the same rankings (bench/quality.py compares them query by query)."""

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from photosearch.common.local import LocalGrid, from_feature_map, keep_salient
from photosearch.common.model_files import ModelFiles
from photosearch_embedder.preprocess import PreprocessSpec
from photosearch_embedder.runtime import LocalEncoder
from photosearch_embedder.runtime_choice import as_exported
from photosearch_embedder.variants import parse_variants
from tools.quality.datasets import Photo

# What the browser (and mesh mode) sends: the photo as taken, then turned clockwise.
QUERY_ROTATIONS = (0, 90, 270)


class ServiceDescriptors:
    """Local grids exactly as the embedder makes them, cached per photo set."""

    def __init__(self, files: ModelFiles, cache_dir: Path) -> None:
        self.preprocess = PreprocessSpec.from_json(files.preprocess())
        if self.preprocess.local is None:
            raise ValueError(f"{files.model_id}: the export has no local graph")
        # The export's local graph in onnxruntime, as exported (the figures' reference).
        engine = as_exported(files).local
        assert engine is not None
        self.encoder = LocalEncoder(files, self.preprocess.local, engine.engine, "cpu")
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
