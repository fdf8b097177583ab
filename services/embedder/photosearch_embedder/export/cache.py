"""Exports in the model cache: {cache}/{model_key(model_id)}/ holds the fingerprint
graph (fingerprint_onnx.py), local.onnx (local_onnx.py), preprocess.json, export.json
(provenance and checks) and manifest.json (sha256 of each file, written last).

Idempotent: when an intact export is there nothing is written; an export made before
local.onnx existed gets local.onnx added (its fingerprint graph is kept as it is).
Replicas sharing a cache volume take turns under a file lock.

torch is imported only where a graph is written (the two imports marked below), so a
run that finds its export ready (the init container on every pod start) never loads it."""

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from photosearch.common.logging import get_logger
from photosearch.common.model_files import PREPROCESS, ModelFiles, sha256_file
from photosearch.common.subjects import model_key
from photosearch_embedder.export.calibration import calibration_photos
from photosearch_embedder.file_lock import file_lock
from photosearch_embedder.models import ModelSpec
from photosearch_embedder.preprocess import LOCAL_ONNX, PreprocessSpec
from photosearch_embedder.resolve import (
    Quantize,
    damaged_files,
    find_export,
    onnx_name,
    read_export,
)

log = get_logger(__name__)
FP32 = onnx_name("none")
EXPORT_INFO = "export.json"


@contextmanager
def _export_lock(cache_dir: Path, model_id: str) -> Iterator[None]:
    """Replicas sharing a cache volume export one at a time (the others then find it)."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    with file_lock(cache_dir / f".{model_key(model_id)}.lock"):
        yield


def _export_local(spec: ModelSpec, directory: Path) -> tuple[PreprocessSpec, dict[str, float]]:
    """Write local.onnx into `directory`: (the preprocessing with its local section, checks)."""
    from photosearch_embedder.export.local_onnx import export_local  # torch

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
    if onnx != FP32 and (directory / FP32).is_file():
        names.insert(1, FP32)  # the reference the runtime choice checks candidates with
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
        from photosearch_embedder.export.fingerprint_onnx import export_onnx, provenance  # torch

        wanted = spec.default_quantization if quantize == "auto" else quantize
        directory = ModelFiles.directory_for(cache_dir, spec.model_id)
        if directory.exists():
            shutil.rmtree(directory)  # damaged or of another quantization
        directory.mkdir(parents=True)
        dim, kept, checks = export_onnx(spec, directory, wanted, insist=quantize == "int8")
        preprocess, local_checks = _export_local(spec, directory)
        checks.update(local_checks)
        (directory / PREPROCESS).write_text(json.dumps(preprocess.to_json(), indent=2))
        (directory / EXPORT_INFO).write_text(json.dumps(provenance(spec, kept, checks), indent=2))
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
