"""Make the configured model available as exported files before serving.

This is the one place serving reaches the export package (photosearch_embedder.export),
and it does so through a child process, never an import: the serving process never
loads torch, and everything the export allocated goes away with the child. Whether an
export can be made here at all (weights, packages) resolve.py decides first."""

import asyncio
import sys
from dataclasses import dataclass
from pathlib import Path

from photosearch.common.logging import get_logger
from photosearch.common.model_files import ModelFiles
from photosearch_embedder.models import ModelSpec, ModelUnavailable
from photosearch_embedder.resolve import Quantize, find_export, resolve

log = get_logger(__name__)
EXPORT_MODULE = "photosearch_embedder.export"
# The export's exit status when the model cannot be had here (export/cli.py).
EXPORT_UNAVAILABLE = 2


@dataclass(frozen=True)
class ModelRequest:
    """Which model to serve and where its exports live (EMBED_MODEL and friends)."""

    model: str
    cache_dir: Path
    model_name: str = ""
    quantize: Quantize = "auto"
    probe_seconds: float = 4.0


@dataclass(frozen=True)
class PreparedModel:
    files: ModelFiles
    note: str


async def prepare_model(request: ModelRequest) -> PreparedModel:
    """The exported files of the requested model; raises ModelUnavailable saying how
    to provide it, or RuntimeError when an export failed."""
    cache = request.cache_dir
    resolution = await asyncio.to_thread(
        resolve,
        request.model,
        cache,
        model_name=request.model_name,
        quantize=request.quantize,
        probe_seconds=request.probe_seconds,
    )
    if resolution.note:
        log.warning("model.note", model_id=resolution.model_id, note=resolution.note)
    if resolution.files is not None:
        return PreparedModel(resolution.files, resolution.note)
    spec = resolution.spec
    assert spec is not None
    log.info("model.exporting", model_id=spec.model_id, cache_dir=str(cache))
    code = await run_export(spec, request)
    files = find_export(cache, spec.model_id)
    if files is None and code != 0:
        if older := find_export(cache, spec.model_id, need_local=False):
            # Adding local.onnx failed: the fingerprints of the export still serve.
            log.error("model.local_export_failed", model_id=spec.model_id, exit_code=code)
            note = "local descriptors could not be added to the export (see the log above)"
            return PreparedModel(older, "; ".join(n for n in (resolution.note, note) if n))
    if code == EXPORT_UNAVAILABLE:
        raise ModelUnavailable(f"model {spec.model_id} could not be exported (see the log above)")
    if code != 0 or files is None:
        raise RuntimeError(f"exporting {spec.model_id} failed (exit code {code})")
    return PreparedModel(files, resolution.note)


async def run_export(spec: ModelSpec, request: ModelRequest) -> int:
    """`python -m photosearch_embedder.export` for `spec` in a child process (its log
    lines go to this process's stdout); its exit status."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        EXPORT_MODULE,
        "--model",
        str(spec.checkpoint_dir or spec.name),
        "--model-name",
        spec.name if spec.checkpoint_dir else "",
        "--cache-dir",
        str(request.cache_dir),
        "--quantize",
        request.quantize,
        "--hub-probe-seconds",
        str(request.probe_seconds),
    )
    try:
        return await process.wait()
    except asyncio.CancelledError:
        process.kill()
        raise
