"""The yardstick every export is checked with: the calibration photos (the serving
package's photos/, see calibration.py there), preprocessed as a model family wants them,
and how a graph's answers on them are compared."""

from pathlib import Path

import numpy as np

from photosearch_embedder.calibration import calibration_photos, fingerprint_inputs, min_cosine
from photosearch_embedder.models import ModelSpec
from photosearch_embedder.preprocess import INPUT_NAME, OUTPUT_NAME

__all__ = ["calibration_photos", "calibration_pixels", "min_cosine", "onnx_fingerprints"]


def calibration_pixels(spec: ModelSpec) -> np.ndarray:
    """The calibration photos (and their mirror images), preprocessed: the yardstick
    for "the graph computes what PyTorch computes" and for int8."""
    return fingerprint_inputs(spec.preprocess)


def onnx_fingerprints(path: Path, pixels: np.ndarray) -> np.ndarray:
    """What the fingerprint graph at `path` computes for `pixels`, on CPU."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out: np.ndarray = session.run([OUTPUT_NAME], {INPUT_NAME: pixels})[0]
    return out
