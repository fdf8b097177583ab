"""The yardstick every export is checked with: real photos shipped with the package
(photos/, see its README), rather than noise, and how a graph's answers on them are
compared."""

from importlib import resources
from pathlib import Path

import numpy as np

from photosearch_embedder.models import ModelSpec
from photosearch_embedder.preprocess import INPUT_NAME, OUTPUT_NAME
from photosearch_embedder.variants import parse_variants


def calibration_photos() -> list[bytes]:
    """Real photos shipped with the package, in name order."""
    folder = resources.files("photosearch_embedder.export") / "photos"
    photos = sorted((f for f in folder.iterdir() if f.name.endswith(".jpg")), key=lambda f: f.name)
    return [f.read_bytes() for f in photos]


def calibration_pixels(spec: ModelSpec) -> np.ndarray:
    """The calibration photos (and their mirror images), preprocessed: the yardstick
    for "the graph computes what PyTorch computes" and for int8."""
    variants = parse_variants(["mirror"])
    return np.concatenate([spec.preprocess.tensors(p, variants) for p in calibration_photos()])


def onnx_fingerprints(path: Path, pixels: np.ndarray) -> np.ndarray:
    """What the fingerprint graph at `path` computes for `pixels`, on CPU."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out: np.ndarray = session.run([OUTPUT_NAME], {INPUT_NAME: pixels})[0]
    return out


def min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    """The smallest cosine between matching rows of two sets of unit vectors."""
    return float(np.min(np.sum(a * b, axis=1)))
