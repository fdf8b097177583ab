"""PyTorch as a serving runtime (EMBED_RUNTIME=torch, and a candidate of auto where torch
is installed): an export's graphs rebuilt as PyTorch modules from the weights the export
was made from (export.json's source), run eagerly in fp32 or under bfloat16 autocast,
on CPU or CUDA.

Eager modules, not a saved torch.export program: in a one-off comparison (not kept as a
bench) the exported program ran DINOv2-small's fingerprint slower under bf16 autocast than
the eager module. The local graph's PCA is read back from local.onnx (its 1x1 convolution), so
both runtimes project with the same numbers. torch is imported only when a torch engine
opens; its trials run in a child process (torch_trial.py), so a process that does not
serve with torch never loads it."""

import json
from pathlib import Path
from typing import Any

import numpy as np

from photosearch.common.model_files import ModelFiles
from photosearch_embedder.models import ModelSpec, spec_for
from photosearch_embedder.preprocess import PreprocessSpec

PROJECTION = ("project.weight", "project.bias")  # ProjectedLocal's 1x1 convolution


def export_spec(files: ModelFiles) -> ModelSpec:
    """The model an export was made from, as its export.json names it."""
    document = json.loads((files.directory / "export.json").read_text())
    source, name = str(document["source"]), files.model_id.partition("@")[0]
    if Path(source).is_absolute() and not Path(source).is_dir():
        raise RuntimeError(f"the checkpoint this export was made from is not here: {source}")
    spec = spec_for(source, name) if Path(source).is_dir() else spec_for(source)
    if spec.model_id != files.model_id:
        raise RuntimeError(
            f"export.json's source {source!r} is {spec.model_id}, not {files.model_id}"
        )
    return spec


def build_module(files: ModelFiles, graph: str) -> Any:
    """The PyTorch module that computes `graph` (an ONNX file name of the export)."""
    from photosearch_embedder.export.fingerprint_graph import fingerprint_module
    from photosearch_embedder.export.local_graph import ProjectedLocal, local_features

    spec = export_spec(files)
    local = PreprocessSpec.from_json(files.preprocess()).local
    if local is None or graph != local.onnx:
        return fingerprint_module(spec, eager_attention=False)
    weight, bias = _projection(files.directory / local.onnx)
    return ProjectedLocal.from_weights(local_features(spec, eager_attention=False), weight, bias)


def _projection(path: Path) -> tuple[np.ndarray, np.ndarray]:
    import onnx
    from onnx import numpy_helper

    found = {
        t.name: numpy_helper.to_array(t)
        for t in onnx.load(str(path)).graph.initializer
        if t.name in PROJECTION
    }
    if set(found) != set(PROJECTION):
        raise RuntimeError(f"{path.name} has no {' and '.join(PROJECTION)}")
    return found[PROJECTION[0]], found[PROJECTION[1]]


class TorchSession:
    """One graph as an eager PyTorch module; bf16 = autocast (weights stay fp32)."""

    def __init__(
        self, files: ModelFiles, graph: str, precision: str, device: str, threads: int
    ) -> None:
        import torch

        if device == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("this torch build sees no CUDA device")
        if threads:
            torch.set_num_threads(threads)
        self.torch = torch
        self.device = torch.device(device)
        self.module: Any = build_module(files, graph).to(self.device).eval()
        self.precision = precision

    def run(self, inputs: np.ndarray) -> np.ndarray:
        torch = self.torch
        with (
            torch.inference_mode(),
            torch.autocast(
                self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"
            ),
        ):
            out = self.module(torch.from_numpy(inputs).to(self.device))
        return np.asarray(out.float().cpu().numpy(), dtype=np.float32)

    def close(self) -> None:
        self.module = None
