"""Export a model to ONNX into the model cache (what the Kubernetes init container runs):

    python -m photosearch_embedder.export --model <auto|name|dir> --cache-dir <dir> \
        [--quantize int8|none] [--model-name NAME]

The model is chosen as the service chooses it (resolve.py); an export already in the
cache is used as it is, an exported directory is copied in, anything else is exported
(cache.py). Exit status 2: the model cannot be had here (the log says how to provide it)."""

import argparse
import logging
from pathlib import Path

from photosearch.common.errors import DomainError
from photosearch.common.logging import configure_logging, get_logger
from photosearch.common.model_files import ModelFiles
from photosearch_embedder.export.cache import copy_export, export_model
from photosearch_embedder.resolve import Quantize, resolve

log = get_logger(__name__)


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
    logging.getLogger("photosearch_embedder").setLevel(logging.INFO)
    try:
        files = run(
            args.model, args.cache_dir, args.quantize, args.model_name, args.hub_probe_seconds
        )
    except DomainError as exc:
        log.error("export.failed", model=args.model, error=str(exc))
        return 2
    log.info("export.ready", model_id=files.model_id, onnx=str(files.onnx_path), dim=files.dim)
    return 0
