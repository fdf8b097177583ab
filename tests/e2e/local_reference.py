"""The local pass as the contract defines it, in Python (Pillow + onnxruntime): what the
page's local descriptors are compared with. Decode as for the fingerprint, turn, resize
the whole photo (long side `long_side`, short side a multiple of `multiple`), scale and
normalise, run local.onnx, quantise to int8."""

import math
from typing import Any

import numpy as np
import onnxruntime as ort
from PIL import Image

from photosearch.common.images import decode_image
from photosearch.common.local import LocalGrid, from_feature_map
from photosearch.common.model_files import ModelFiles
from photosearch_embedder.resample import resized

# Clockwise turns as Pillow transposes (whose names count counter-clockwise).
TURNS = {0: None, 90: Image.Transpose.ROTATE_270, 270: Image.Transpose.ROTATE_90}


def local_size(width: int, height: int, local: dict[str, Any]) -> tuple[int, int]:
    long_side, multiple = int(local["long_side"]), int(local["multiple"])
    if local.get("square"):
        return long_side, long_side
    scale = long_side / max(width, height)
    short = max(multiple, math.floor(min(width, height) * scale / multiple + 0.5) * multiple)
    return (long_side, short) if width >= height else (short, long_side)


class LocalReference:
    def __init__(self, model: ModelFiles) -> None:
        self.spec = model.preprocess()
        self.local = self.spec["local"]
        path = model.directory / self.local["onnx"]
        self.session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    def run(self, tensor: np.ndarray) -> np.ndarray:
        """(1, 3, H, W) float32 -> (1, dim, rows, cols) float32."""
        (out,) = self.session.run([self.local["output_name"]], {self.local["input_name"]: tensor})
        result: np.ndarray = out
        return result

    def tensor(self, image: Image.Image) -> np.ndarray:
        size = local_size(*image.size, self.local)
        image = resized(image, size)  # the horizontal pass first, as the page does
        pixels = np.asarray(image, dtype=np.float32) * np.float32(self.spec["scale"])
        mean = np.asarray(self.spec["mean"], dtype=np.float32)
        std = np.asarray(self.spec["std"], dtype=np.float32)
        chw = ((pixels - mean) / std).transpose(2, 0, 1)
        return np.ascontiguousarray(chw[None], dtype=np.float32)

    def views(self, data: bytes) -> list[LocalGrid]:
        """The photo as taken, turned 90 and 270 degrees clockwise, as the page sends them."""
        background = tuple(self.spec.get("alpha_background", (255, 255, 255)))
        image = decode_image(data, background=background).image
        grids = []
        for transpose in TURNS.values():
            turned = image if transpose is None else image.transpose(transpose)
            grids.append(from_feature_map(self.run(self.tensor(turned))[0]))
        return grids
