"""Make the configured model available as exported files before serving.

The export (PyTorch -> ONNX) runs in a child process: the serving process never
imports torch, and everything the export allocated goes away with the child."""

import asyncio
import sys
from dataclasses import dataclass

from photosearch.common.logging import get_logger
from photosearch.common.model_files import ModelFiles
from photosearch_embedder.config import EmbedderSettings
from photosearch_embedder.models import ModelUnavailable
from photosearch_embedder.resolve import find_export, resolve


@dataclass(frozen=True)
class PreparedModel:
    files: ModelFiles
    note: str


log = get_logger(__name__)


async def prepare_model(settings: EmbedderSettings) -> PreparedModel:
    """The exported files of the configured model; raises ModelUnavailable saying how
    to provide it, or RuntimeError when an export failed."""
    cache = settings.model_cache_dir
    resolution = await asyncio.to_thread(
        resolve,
        settings.model,
        cache,
        model_name=settings.model_name,
        quantize=settings.quantize,
        probe_seconds=settings.hub_probe_seconds,
    )
    if resolution.note:
        log.warning("model.note", model_id=resolution.model_id, note=resolution.note)
    if resolution.files is not None:
        return PreparedModel(resolution.files, resolution.note)
    spec = resolution.spec
    assert spec is not None
    log.info("model.exporting", model_id=spec.model_id, cache_dir=str(cache))
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "photosearch_embedder.export",
        "--model",
        str(spec.checkpoint_dir or spec.name),
        "--model-name",
        spec.name if spec.checkpoint_dir else "",
        "--cache-dir",
        str(cache),
        "--quantize",
        settings.quantize,
        "--hub-probe-seconds",
        str(settings.hub_probe_seconds),
    )
    try:
        code = await process.wait()
    except asyncio.CancelledError:
        process.kill()
        raise
    files = find_export(cache, spec.model_id)
    if files is None and code != 0:
        if older := find_export(cache, spec.model_id, need_local=False):
            # Adding local.onnx failed: the fingerprints of the export still serve.
            log.error("model.local_export_failed", model_id=spec.model_id, exit_code=code)
            note = "local descriptors could not be added to the export (see the log above)"
            return PreparedModel(older, "; ".join(n for n in (resolution.note, note) if n))
    if code == 2:
        raise ModelUnavailable(f"model {spec.model_id} could not be exported (see the log above)")
    if code != 0 or files is None:
        raise RuntimeError(f"exporting {spec.model_id} failed (exit code {code})")
    return PreparedModel(files, resolution.note)
