"""Export a model to ONNX into the model cache (what the Kubernetes init container runs):

    python -m photosearch_embedder.export --model <auto|name|dir> --cache-dir <dir> \
        [--quantize int8|none] [--model-name NAME]

Writes {cache}/{model_key(model_id)}/: the ONNX graph (`pixel_values` float32 NCHW with
a dynamic batch -> L2-normalised `fingerprint`), local.onnx (the whole photo -> one unit
vector per cell, local_graph.py), preprocess.json and manifest.json (sha256 of each
file). Idempotent: when an intact export is there it does nothing; an export made before
local.onnx existed gets local.onnx added (its fingerprint graph is kept as it is)."""

import argparse
import fcntl
import json
import logging
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import numpy as np

from photosearch.common.errors import DomainError
from photosearch.common.logging import configure_logging, get_logger
from photosearch.common.model_files import PREPROCESS, ModelFiles, sha256_file
from photosearch.common.subjects import model_key
from photosearch_embedder.models import ModelSpec
from photosearch_embedder.preprocess import INPUT_NAME, LOCAL_ONNX, OUTPUT_NAME, PreprocessSpec
from photosearch_embedder.resolve import (
    Quantize,
    damaged_files,
    find_export,
    onnx_name,
    read_export,
    resolve,
)
from photosearch_embedder.variants import parse_variants

log = get_logger(__name__)
OPSET = 18
EXPORT_INFO = "export.json"
FP32_MIN_COSINE = 0.9999
# int8 is served only where its fingerprints of real photos stay this close to fp32's.
INT8_MIN_COSINE = 0.99


@contextmanager
def _export_lock(cache_dir: Path, model_id: str) -> Iterator[None]:
    """Replicas sharing a cache volume export one at a time (the others then find it)."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    with (cache_dir / f".{model_key(model_id)}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _fingerprints(path: Path, pixels: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out: np.ndarray = session.run([OUTPUT_NAME], {INPUT_NAME: pixels})[0]
    return out


def _min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.min(np.sum(a * b, axis=1)))


def calibration_photos() -> list[bytes]:
    """Real photos shipped with the package, in name order."""
    folder = resources.files("photosearch_embedder") / "calibration"
    photos = sorted((f for f in folder.iterdir() if f.name.endswith(".jpg")), key=lambda f: f.name)
    return [f.read_bytes() for f in photos]


def calibration_pixels(spec: ModelSpec) -> np.ndarray:
    """The calibration photos (and their mirror images), preprocessed: the yardstick
    for "the graph computes what PyTorch computes" and for int8."""
    variants = parse_variants(["mirror"])
    return np.concatenate([spec.preprocess.tensors(p, variants) for p in calibration_photos()])


def export_onnx(
    spec: ModelSpec, directory: Path, quantization: Literal["int8", "none"], *, insist: bool
) -> tuple[int, Literal["int8", "none"], dict[str, float]]:
    """Write the graph for `spec` into `directory`: (dimension, quantization kept, checks).
    int8 is kept only when it agrees with fp32 on real photos, unless `insist`."""
    import torch

    from photosearch_embedder.torch_models import fingerprint_module

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
    fp32_out = _fingerprints(fp32, pixels)
    checks = {"fp32_vs_pytorch_min_cosine": round(_min_cosine(fp32_out, expected), 6)}
    log.info("export.onnx", model_id=spec.model_id, seconds=round(time.monotonic() - started, 1))
    if checks["fp32_vs_pytorch_min_cosine"] < FP32_MIN_COSINE:
        raise RuntimeError(f"the ONNX graph disagrees with PyTorch: {checks}")
    if quantization == "none":
        return int(expected.shape[1]), "none", checks
    int8 = directory / onnx_name("int8")
    _quantize_int8(fp32, int8)
    checks["int8_vs_fp32_min_cosine"] = round(_min_cosine(_fingerprints(int8, pixels), fp32_out), 6)
    if checks["int8_vs_fp32_min_cosine"] < INT8_MIN_COSINE and not insist:
        log.warning(
            "export.int8_rejected",
            model_id=spec.model_id,
            message="int8 fingerprints of real photos drift from fp32; keeping fp32",
            **checks,
        )
        int8.unlink()
        return int(expected.shape[1]), "none", checks
    log.info("export.int8", model_id=spec.model_id, **checks)
    fp32.unlink()
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


def _provenance(spec: ModelSpec, quantization: str, checks: dict[str, float]) -> dict[str, Any]:
    """export.json: where the graph came from and how it was checked (for people)."""
    import onnxruntime
    import torch

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


def _export_local(spec: ModelSpec, directory: Path) -> tuple[PreprocessSpec, dict[str, float]]:
    """Write local.onnx into `directory`: (the preprocessing with its local section, checks)."""
    from photosearch_embedder.local_export import export_local

    local, checks = export_local(spec, directory / LOCAL_ONNX, calibration_photos())
    return spec.preprocess.with_local(local), checks


def _write_json(path: Path, document: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(document, indent=2))
    tmp.replace(path)


def _complete_local(spec: ModelSpec, files: ModelFiles) -> ModelFiles:
    """An intact export without local.onnx (made before it existed): add local.onnx and
    the local section; the fingerprint graph, hence every stored vector, stays valid."""
    log.info("export.adding_local", model_id=spec.model_id, directory=str(files.directory))
    preprocess, checks = _export_local(spec, files.directory)
    current = PreprocessSpec.from_json(files.preprocess()).with_local(preprocess.local)
    _write_json(files.preprocess_path, current.to_json())
    info_path = files.directory / EXPORT_INFO
    info = json.loads(info_path.read_text()) if info_path.is_file() else {}
    info.setdefault("checks", {}).update(checks)
    info["local_added_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    _write_json(info_path, info)
    return _publish(files.directory, files.model_id, files.dim, files.onnx)


def _publish(directory: Path, model_id: str, dim: int, onnx: str) -> ModelFiles:
    names = [onnx, LOCAL_ONNX, PREPROCESS, EXPORT_INFO]
    files = ModelFiles(
        directory, model_id, dim, onnx, {n: sha256_file(directory / n) for n in names}
    )
    files.write_manifest()  # last: readers look for the manifest
    return files


def export_model(spec: ModelSpec, cache_dir: Path, quantize: Quantize = "auto") -> ModelFiles:
    """Export `spec` unless an intact export (of the asked quantization) is there."""
    with _export_lock(cache_dir, spec.model_id):
        if existing := find_export(cache_dir, spec.model_id, quantize):
            log.info("export.present", model_id=spec.model_id, directory=str(existing.directory))
            return existing
        if older := find_export(cache_dir, spec.model_id, quantize, need_local=False):
            return _complete_local(spec, older)
        wanted = spec.default_quantization if quantize == "auto" else quantize
        directory = ModelFiles.directory_for(cache_dir, spec.model_id)
        if directory.exists():
            shutil.rmtree(directory)  # damaged or of another quantization
        directory.mkdir(parents=True)
        dim, kept, checks = export_onnx(spec, directory, wanted, insist=quantize == "int8")
        preprocess, local_checks = _export_local(spec, directory)
        checks.update(local_checks)
        (directory / PREPROCESS).write_text(json.dumps(preprocess.to_json(), indent=2))
        (directory / EXPORT_INFO).write_text(json.dumps(_provenance(spec, kept, checks), indent=2))
        files = _publish(directory, spec.model_id, dim, onnx_name(kept))
        log.info("export.done", model_id=spec.model_id, onnx=files.onnx, dim=dim)
        return files


def copy_export(source: ModelFiles, cache_dir: Path) -> ModelFiles:
    """Bring an export made elsewhere (a directory with a manifest) into the cache."""
    with _export_lock(cache_dir, source.model_id):
        if existing := find_export(cache_dir, source.model_id, need_local=False):
            if existing.files == source.files:
                return existing
        directory = ModelFiles.directory_for(cache_dir, source.model_id)
        if directory.resolve() == source.directory.resolve():
            return source
        if directory.exists():
            shutil.rmtree(directory)
        directory.mkdir(parents=True)
        for name in source.files:
            shutil.copyfile(source.directory / name, directory / name)
        copied = read_export(source.directory)
        files = ModelFiles(directory, copied.model_id, copied.dim, copied.onnx, copied.files)
        if bad := damaged_files(files, need_local=False):
            raise RuntimeError(f"copy of {source.directory} is damaged: {bad}")
        files.write_manifest()
        return files


def run(
    model: str, cache_dir: Path, quantize: Quantize, model_name: str, probe_seconds: float
) -> ModelFiles:
    resolution = resolve(
        model, cache_dir, model_name=model_name, quantize=quantize, probe_seconds=probe_seconds
    )
    if resolution.note:
        log.info("export.model", model_id=resolution.model_id, note=resolution.note)
    if resolution.spec is None:
        assert resolution.files is not None
        return copy_export(resolution.files, cache_dir)
    if resolution.files is not None:
        log.info("export.present", model_id=resolution.model_id)
        return resolution.files
    return export_model(resolution.spec, cache_dir, quantize)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m photosearch_embedder.export", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--model", required=True, help="auto, a model name, or a local directory")
    parser.add_argument("--cache-dir", required=True, type=Path)
    parser.add_argument("--quantize", choices=["auto", "int8", "none"], default="auto")
    parser.add_argument("--model-name", default="", help="name for a checkpoint directory")
    parser.add_argument("--hub-probe-seconds", type=float, default=4.0)
    args = parser.parse_args(argv)
    configure_logging("embedder-export", "info", "auto")
    # The exporter and the quantiser narrate every graph pass at INFO.
    logging.getLogger().setLevel(logging.WARNING)
    for name in (__name__, "photosearch_embedder"):
        logging.getLogger(name).setLevel(logging.INFO)
    try:
        files = run(
            args.model, args.cache_dir, args.quantize, args.model_name, args.hub_probe_seconds
        )
    except DomainError as exc:
        log.error("export.failed", model=args.model, error=str(exc))
        return 2
    log.info("export.ready", model_id=files.model_id, onnx=str(files.onnx_path), dim=files.dim)
    return 0


if __name__ == "__main__":
    sys.exit(main())
