"""Write the fingerprint graph of a model (the ONNX file search and the browser compare
vectors of) and check it on the calibration photos: fp32 against PyTorch, then int8
against fp32, keeping int8 only where it stays faithful (fp32 is kept beside it).

The graph: `pixel_values` float32 NCHW with a dynamic batch -> L2-normalised
`fingerprint`."""

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import torch

from photosearch.common.logging import get_logger
from photosearch_embedder.export.calibration import (
    calibration_pixels,
    min_cosine,
    onnx_fingerprints,
)
from photosearch_embedder.export.fingerprint_graph import fingerprint_module
from photosearch_embedder.models import ModelSpec
from photosearch_embedder.preprocess import INPUT_NAME, OUTPUT_NAME
from photosearch_embedder.resolve import onnx_name

log = get_logger(__name__)
OPSET = 18
FP32_MIN_COSINE = 0.9999
# int8 is served only where its fingerprints of real photos stay this close to fp32's.
INT8_MIN_COSINE = 0.99


def export_onnx(
    spec: ModelSpec, directory: Path, quantization: Literal["int8", "none"], *, insist: bool
) -> tuple[int, Literal["int8", "none"], dict[str, float]]:
    """Write the graph for `spec` into `directory`: (dimension, quantization kept, checks).
    int8 is kept only when it agrees with fp32 on real photos, unless `insist`."""
    module = fingerprint_module(spec)
    pixels = calibration_pixels(spec)
    with torch.no_grad():
        expected = module(torch.from_numpy(pixels)).numpy()
    fp32 = directory / onnx_name("none")
    started = time.monotonic()
    torch.onnx.export(
        module,
        (torch.from_numpy(pixels[:2]),),
        str(fp32),
        dynamo=True,
        input_names=[INPUT_NAME],
        output_names=[OUTPUT_NAME],
        dynamic_shapes={"pixel_values": {0: torch.export.Dim("batch", min=1, max=1024)}},
        opset_version=OPSET,
        external_data=False,
        verbose=False,
    )
    fp32_out = onnx_fingerprints(fp32, pixels)
    checks = {"fp32_vs_pytorch_min_cosine": round(min_cosine(fp32_out, expected), 6)}
    log.info("export.onnx", model_id=spec.model_id, seconds=round(time.monotonic() - started, 1))
    if checks["fp32_vs_pytorch_min_cosine"] < FP32_MIN_COSINE:
        raise RuntimeError(f"the ONNX graph disagrees with PyTorch: {checks}")
    if quantization == "none":
        return int(expected.shape[1]), "none", checks
    int8 = directory / onnx_name("int8")
    _quantize_int8(fp32, int8)
    checks["int8_vs_fp32_min_cosine"] = round(
        min_cosine(onnx_fingerprints(int8, pixels), fp32_out), 6
    )
    if checks["int8_vs_fp32_min_cosine"] < INT8_MIN_COSINE and not insist:
        log.warning(
            "export.int8_rejected",
            model_id=spec.model_id,
            message="int8 fingerprints of real photos drift from fp32; keeping fp32",
            **checks,
        )
        int8.unlink()
        return int(expected.shape[1]), "none", checks
    # fp32 stays beside int8: the runtime choice compares every candidate with it, and
    # runtimes with their own int8 (OpenVINO) start from it (docs/models.md).
    log.info("export.int8", model_id=spec.model_id, **checks)
    return int(expected.shape[1]), "int8", checks


def _quantize_int8(fp32: Path, int8: Path) -> None:
    """Dynamic int8 with signed weights (QUInt8 weights measured much slower here)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    prepared = fp32.with_suffix(".pre.onnx")
    try:
        quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
        quantize_dynamic(str(prepared), str(int8), weight_type=QuantType.QInt8)
    finally:
        prepared.unlink(missing_ok=True)


def provenance(spec: ModelSpec, quantization: str, checks: dict[str, float]) -> dict[str, Any]:
    """export.json: where the graph came from and how it was checked (for people)."""
    import onnxruntime

    return {
        "model_id": spec.model_id,
        "family": spec.family,
        "source": str(spec.checkpoint_dir or spec.name),
        "quantization": quantization,
        "opset": OPSET,
        "checks": checks,
        "versions": {"torch": torch.__version__, "onnxruntime": onnxruntime.__version__},
        "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
