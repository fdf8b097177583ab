"""Write local.onnx for a model (see local_graph.py) and check it against PyTorch.

Height and width are dynamic, so one file serves every photo shape. A ViT whose graph
cannot be made exact at several sizes falls back to a fixed square input
(`square: true` in preprocess.json: the photo is stretched to long_side x long_side)."""

import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from photosearch.common.logging import get_logger
from photosearch_embedder.export.local_graph import (
    ProjectedLocal,
    calibration_views,
    cells_of,
    fit_pca,
    local_features,
)
from photosearch_embedder.models import ModelSpec
from photosearch_embedder.preprocess import LocalSpec, PreprocessSpec
from photosearch_embedder.variants import parse_variants

log = get_logger(__name__)
OPSET = 18
MIN_COSINE = 0.9999
MAX_SIDE = 2048


def _export(module: torch.nn.Module, local: LocalSpec, sample: np.ndarray, path: Path) -> None:
    shapes = None
    if not local.square:
        height = torch.export.Dim("height", min=local.multiple, max=MAX_SIDE)
        width = torch.export.Dim("width", min=local.multiple, max=MAX_SIDE)
        shapes = {local.input_name: {2: height, 3: width}}
    tmp = path.with_suffix(".tmp.onnx")
    torch.onnx.export(
        module,
        (torch.from_numpy(sample),),
        str(tmp),
        dynamo=True,
        input_names=[local.input_name],
        output_names=[local.output_name],
        dynamic_shapes=shapes,
        opset_version=OPSET,
        external_data=False,
        verbose=False,
    )
    tmp.replace(path)


def min_cell_cosine(
    path: Path, module: torch.nn.Module, local: LocalSpec, views: list[np.ndarray]
) -> float:
    """Smallest cosine between a cell of the ONNX map and the same cell of PyTorch's."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    worst = 1.0
    with torch.no_grad():
        for view in views:
            (got,) = session.run([local.output_name], {local.input_name: view})
            expected = module(torch.from_numpy(view)).numpy()
            if got.shape != expected.shape:
                return -1.0
            worst = min(worst, float(np.min(np.sum(got * expected, axis=1))))
    return worst


def _check_views(photos: list[bytes], preprocess: PreprocessSpec) -> list[np.ndarray]:
    """The photos at the local long side and a turned one: several grid shapes."""
    assert preprocess.local is not None
    images = [preprocess.decode(d, parse_variants([])) for d in photos]
    images.append(images[0].transpose(Image.Transpose.ROTATE_90))
    sides = (preprocess.local.long_side, 320)
    views: list[np.ndarray] = []
    for side in sides:
        sized = preprocess.with_local(replace(preprocess.local, long_side=side))
        views.extend(sized.local_tensor(image) for image in images)
    shapes: dict[tuple[int, ...], np.ndarray] = {}
    for view in views:
        shapes.setdefault(view.shape, view)
    return list(shapes.values())


def export_local(
    spec: ModelSpec, path: Path, photos: list[bytes]
) -> tuple[LocalSpec, dict[str, float]]:
    """Fit the PCA, write the graph to `path`, check it: (the local section, checks)."""
    started = time.monotonic()
    features = local_features(spec)
    planned = spec.preprocess.with_local(spec.local)
    projection = fit_pca(cells_of(features, calibration_views(photos, planned)), spec.local.dim)
    module = ProjectedLocal(features, projection).eval()
    local = replace(spec.local, dim=projection.dim)
    views = _check_views(photos, planned.with_local(local))
    checks: dict[str, float] = {}
    problem = ""
    try:
        _export(module, local, views[0], path)
        worst = min_cell_cosine(path, module, local, views)
        checks["local_vs_pytorch_min_cosine"] = round(worst, 6)
        if checks["local_vs_pytorch_min_cosine"] < MIN_COSINE:
            problem = f"disagrees with PyTorch at dynamic sizes: {checks}"
    except Exception as exc:  # the exporter's message says which op could not be dynamic
        problem = f"could not be exported with dynamic sizes: {exc}".splitlines()[0][:300]
    if problem:
        if spec.family != "dinov2":
            raise RuntimeError(f"the local graph of {spec.model_id} {problem}")
        log.warning("export.local_square", model_id=spec.model_id, reason=problem)
        local = replace(local, square=True)
        square = planned.with_local(local)
        views = [square.local_tensor(square.decode(d, parse_variants([]))) for d in photos]
        _export(module, local, views[0], path)
        worst = min_cell_cosine(path, module, local, views)
        checks = {"local_vs_pytorch_min_cosine": round(worst, 6)}
        if checks["local_vs_pytorch_min_cosine"] < MIN_COSINE:
            raise RuntimeError(f"the local graph of {spec.model_id} disagrees: {checks}")
    checks["local_check_sizes"] = len(views)
    log.info(
        "export.local",
        model_id=spec.model_id,
        dim=local.dim,
        square=local.square,
        seconds=round(time.monotonic() - started, 1),
        **checks,
    )
    return local, checks
