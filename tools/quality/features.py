"""The model files a run needs, and descriptors of every photo of a dataset, computed
once per (model, settings) and kept in a cache folder for fast ablations."""

import hashlib
import json
import logging
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from photosearch.common.model_files import ModelFiles
from photosearch.common.subjects import model_key
from photosearch_embedder.preprocess import PreprocessSpec
from tools.quality.datasets import Photo
from tools.quality.extract import Extractor, LocalFeatures

log = logging.getLogger(__name__)


def exported_model(model: str, cache_dir: Path) -> ModelFiles:
    """The embedder's own export of `model` (made with its exporter when missing), the
    very files the mesh's embedder and the browser use."""
    from photosearch_embedder.export import run
    from photosearch_embedder.models import spec_for

    files = ModelFiles.load(cache_dir, spec_for(model).model_id)
    if files is not None and "local" in files.preprocess():
        return files
    return run(model, cache_dir, "auto", "", 4.0)  # exports, or completes an older export


def descriptor_graph(model: str, files: ModelFiles) -> Path:
    """The two-output graph beside the model's export; exported in a child process
    (torch stays out of this one) when missing."""
    path = files.directory.parent / f"{model_key(files.model_id)}-descriptors.onnx"
    if not path.is_file():
        code = (
            "import sys; from pathlib import Path; "
            "from tools.quality.graph import export_descriptor_graph; "
            "export_descriptor_graph(sys.argv[1], Path(sys.argv[2]))"
        )
        root = Path(__file__).resolve().parents[2]
        subprocess.run([sys.executable, "-c", code, model, str(path)], check=True, cwd=root)
    return path


def make_extractor(
    model: str, cache_dir: Path, long_side: int = 448, *, local: bool = True
) -> Extractor:
    """Fingerprints from the model's export; local descriptors too when `local` (the
    descriptor graph exists for the models in graph.LOCAL_LAYERS)."""
    files = exported_model(model, cache_dir)
    spec = PreprocessSpec.from_json(files.preprocess())
    graph = descriptor_graph(model, files) if local else None
    extractor = Extractor(files.onnx_path, spec, graph, long_side=long_side)
    # Cached descriptors are per model (the first model's caches keep their names).
    extractor.cache_tag = "" if model == "efficientnet-lite0" else files.model_id
    return extractor


@dataclass
class PhotoFeatures:
    fingerprints: np.ndarray  # (variants + 1, dim), "global" first
    local: LocalFeatures | None


def _cache_name(photos: list[Photo], tag: str) -> str:
    digest = hashlib.sha256(json.dumps([p.key for p in photos] + [tag]).encode()).hexdigest()
    return digest[:16]


def compute(
    extractor: Extractor,
    photos: list[Photo],
    cache_dir: Path,
    *,
    variants: tuple[str, ...] = (),
    local: bool = True,
    long_side: int | None = None,
    rotate: int = 0,
    tag: str = "",
) -> list[PhotoFeatures]:
    """Descriptors of `photos` (turned `rotate` degrees counter-clockwise), in order,
    from the cache when present."""
    side = long_side or extractor.long_side
    name = _cache_name(photos, f"{extractor.cache_tag}{tag}|{variants}|{local}|{side}|{rotate}")
    path = cache_dir / f"features-{name}.npz"
    if path.is_file():
        return _load(path, len(photos))
    out: list[PhotoFeatures] = []
    for photo in photos:
        image = extractor.decode(photo.path.read_bytes())
        if rotate:
            image = image.rotate(rotate, expand=True)
        fingerprints = extractor.fingerprints([image], variants)[0]
        out.append(PhotoFeatures(fingerprints, extractor.local(image, side) if local else None))
    _save(path, out)
    return _load(path, len(photos))  # the stored (float16) form, so every run agrees


def _save(path: Path, features: list[PhotoFeatures]) -> None:
    arrays: dict[str, np.ndarray] = {}
    for i, f in enumerate(features):
        arrays[f"g{i}"] = f.fingerprints
        if f.local is not None:
            arrays[f"c{i}"] = f.local.cells.astype(np.float16)
            arrays[f"m{i}"] = np.asarray([*f.local.grid, f.local.aspect], dtype=np.float64)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **arrays)  # type: ignore[arg-type]
    tmp.replace(path)


def _load(path: Path, n: int) -> list[PhotoFeatures]:
    from tools.quality.extract import grid_xy

    data = np.load(path)
    out = []
    for i in range(n):
        local = None
        if f"c{i}" in data:
            rows, cols, aspect = data[f"m{i}"]
            local = LocalFeatures(
                data[f"c{i}"].astype(np.float32),
                grid_xy(int(rows), int(cols)),
                (int(rows), int(cols)),
                float(aspect),
            )
        out.append(PhotoFeatures(data[f"g{i}"], local))
    return out
