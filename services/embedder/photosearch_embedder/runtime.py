"""One exported model in memory: an onnxruntime session on CPU or CUDA.

Blocking calls only; the model manager runs them on its inference thread."""

import ctypes
import ctypes.util
import gc

import numpy as np
import onnxruntime as ort

from photosearch.common.logging import get_logger
from photosearch.common.model_files import ModelFiles
from photosearch_embedder.preprocess import INPUT_NAME, OUTPUT_NAME, LocalSpec

log = get_logger(__name__)
CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"


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


def open_session(path: str, device: str, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = threads
    # Idle onnxruntime threads would spin on the cores the decode threads need
    # (measured: no faster alone, much slower beside other work).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    providers = [CUDA, CPU] if device == "cuda" else [CPU]
    return ort.InferenceSession(path, options, providers=providers)


class OnnxEncoder:
    """pixel_values (N, 3, H, W) float32 -> L2-normalised fingerprints (N, dim)."""

    def __init__(self, files: ModelFiles, device: str, threads: int = 0) -> None:
        self.session = open_session(str(files.onnx_path), device, threads)
        self.dim = files.dim

    def encode(self, pixel_values: np.ndarray) -> np.ndarray:
        if len(pixel_values) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        outputs = self.session.run([OUTPUT_NAME], {INPUT_NAME: pixel_values})
        vectors: np.ndarray = outputs[0]
        return vectors

    def close(self) -> None:
        del self.session


class LocalEncoder:
    """One photo's (1, 3, H, W) local input -> (dim, rows, cols) unit cells."""

    def __init__(self, files: ModelFiles, spec: LocalSpec, device: str, threads: int = 0) -> None:
        self.spec = spec
        self.session = open_session(str(files.directory / spec.onnx), device, threads)

    def describe(self, pixel_values: np.ndarray) -> np.ndarray:
        outputs = self.session.run([self.spec.output_name], {self.spec.input_name: pixel_values})
        feature_map: np.ndarray = outputs[0][0]
        return feature_map

    def close(self) -> None:
        del self.session
