"""One exported model in memory: its graphs opened in the engines chosen for this host
(runtime_choice.py), on CPU or CUDA.

Blocking calls only; the model manager runs them on its inference thread."""

import ctypes
import ctypes.util
import gc
from pathlib import Path

import numpy as np
import onnxruntime as ort

from photosearch.common.logging import get_logger
from photosearch.common.model_files import ModelFiles
from photosearch_embedder.engines import CUDA, Engine, Session, open_session
from photosearch_embedder.preprocess import INPUT_NAME, OUTPUT_NAME, LocalSpec, PreprocessSpec
from photosearch_embedder.runtime_trials import FINGERPRINT, LOCAL, calibration_inputs

log = get_logger(__name__)


def pick_device(requested: str) -> str:
    """'cuda' only where onnxruntime has the CUDA provider; otherwise 'cpu', with a warning."""
    if requested == "cuda":
        if CUDA in ort.get_available_providers():
            return "cuda"
        log.warning(
            "device.cuda_unavailable",
            message="EMBED_DEVICE=cuda but this onnxruntime has no CUDA provider "
            "(install onnxruntime-gpu on a GPU node); running on CPU",
            available=ort.get_available_providers(),
        )
    return "cpu"


def release_memory() -> None:
    """Give freed heap pages back to the OS: glibc keeps them otherwise, and a
    process that unloaded its model would look (and be billed) as if it had not."""
    gc.collect()
    libc_name = ctypes.util.find_library("c")
    if libc_name:
        try:
            ctypes.CDLL(libc_name).malloc_trim(0)
        except AttributeError:  # not glibc (e.g. musl): nothing to trim
            pass


def _open(
    files: ModelFiles,
    engine: Engine,
    graph: str,
    io: tuple[str, str],
    device: str,
    threads: int,
    cache: Path | None,
) -> Session:
    """`graph`'s session in `engine` (OpenVINO's int8 of it is calibrated as when chosen)."""

    def inputs() -> list[np.ndarray]:
        return calibration_inputs(PreprocessSpec.from_json(files.preprocess()), graph)

    return open_session(
        engine,
        files,
        device=device,
        threads=threads,
        io=io,
        calibration=inputs,
        cache=cache,
    )


class FingerprintEncoder:
    """pixel_values (N, 3, H, W) float32 -> L2-normalised fingerprints (N, dim)."""

    def __init__(
        self,
        files: ModelFiles,
        engine: Engine,
        device: str,
        threads: int = 0,
        cache: Path | None = None,
    ) -> None:
        self.engine = engine
        io = (INPUT_NAME, OUTPUT_NAME)
        self.session = _open(files, engine, FINGERPRINT, io, device, threads, cache)
        self.dim = files.dim

    def encode(self, pixel_values: np.ndarray) -> np.ndarray:
        if len(pixel_values) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self.session.run(pixel_values)

    def close(self) -> None:
        self.session.close()


class LocalEncoder:
    """One photo's (1, 3, H, W) local input -> (dim, rows, cols) unit cells."""

    def __init__(
        self,
        files: ModelFiles,
        spec: LocalSpec,
        engine: Engine,
        device: str,
        threads: int = 0,
        cache: Path | None = None,
    ) -> None:
        self.engine = engine
        io = (spec.input_name, spec.output_name)
        self.session = _open(files, engine, LOCAL, io, device, threads, cache)

    def describe(self, pixel_values: np.ndarray) -> np.ndarray:
        feature_map: np.ndarray = self.session.run(pixel_values)[0]
        return feature_map

    def close(self) -> None:
        self.session.close()
