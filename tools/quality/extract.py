"""Photos -> descriptors with onnxruntime: the whole-image fingerprint exactly as the
embedder makes it (its preprocessing, its exported ONNX file), and local descriptors
from the descriptor graph (graph.py) on the whole photo, uncropped.

Local preprocessing (what the browser would do for the second pass):
  decode + EXIF orientation + RGB as for the fingerprint; resize (Pillow bicubic) so
  the long side is `long_side` and the short side is the scaled short side rounded to
  a multiple of 32 (at least 32): the exported graph is exact for sides that are
  multiples of 32; same scale and mean/std as the fingerprint."""

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

from photosearch_embedder.preprocess import PreprocessSpec
from photosearch_embedder.resample import resized
from photosearch_embedder.variants import Variant, parse_variants
from tools.quality.graph import FINGERPRINT, INPUT, LOCAL

GRID = 32


@dataclass(frozen=True)
class LocalFeatures:
    """Local descriptors of one photo: one row per cell of the feature map, and where
    each cell sits in the photo as fractions of its width and height (0..1)."""

    cells: np.ndarray  # (n, d) float32, unit rows
    xy: np.ndarray  # (n, 2) float32, cell centres (x, y) in [0, 1]
    grid: tuple[int, int]  # (rows, cols)
    aspect: float  # photo width / height, to put coordinates on one scale


def session(path: Path, threads: int = 0) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def local_size(width: int, height: int, long_side: int) -> tuple[int, int]:
    scale = long_side / max(width, height)

    def side(value: int) -> int:
        return max(GRID, int(value * scale / GRID + 0.5) * GRID)

    return (long_side, side(height)) if width >= height else (side(width), long_side)


def grid_xy(rows: int, cols: int) -> np.ndarray:
    ys, xs = np.meshgrid(
        (np.arange(rows, dtype=np.float32) + 0.5) / rows,
        (np.arange(cols, dtype=np.float32) + 0.5) / cols,
        indexing="ij",
    )
    return np.stack([xs.ravel(), ys.ravel()], axis=1)


class Extractor:
    """Fingerprints (the embedder's file) and local descriptors (the descriptor graph)."""

    def __init__(
        self,
        fingerprint_onnx: Path,
        preprocess: PreprocessSpec,
        descriptor_onnx: Path | None = None,
        *,
        long_side: int = 448,
        threads: int = 0,
    ) -> None:
        self.preprocess = preprocess
        self.long_side = long_side
        self.cache_tag = ""  # names the model in cache file names (features.compute)
        self._global = session(fingerprint_onnx, threads)
        self._local = session(descriptor_onnx, threads) if descriptor_onnx else None

    @property
    def fingerprint_graph(self) -> ort.InferenceSession:
        return self._global

    @property
    def descriptor_graph(self) -> ort.InferenceSession:
        if self._local is None:
            raise RuntimeError("no descriptor graph was given")
        return self._local

    def fingerprint_tensor(self, image: Image.Image) -> np.ndarray:
        """(1, 3, crop, crop): the fingerprint graph's input, the view as the embedder makes it."""
        return self.preprocess.view(image, parse_variants([])[0])[None]

    def decode(self, data: bytes) -> Image.Image:
        return self.preprocess.decode(data, parse_variants([]))

    def fingerprints(
        self, images: Sequence[Image.Image], variants: Sequence[str] = ()
    ) -> np.ndarray:
        """(len(images), len(variants) + 1, dim): "global" first, as the embedder does."""
        parsed: list[Variant] = parse_variants(list(variants))
        tensors = np.stack([self.preprocess.view(im, v) for im in images for v in parsed])
        out: np.ndarray = self._global.run(None, {INPUT: tensors})[0]
        return out.reshape(len(images), len(parsed), -1)

    def local_tensor(self, image: Image.Image, long_side: int | None = None) -> np.ndarray:
        size = local_size(*image.size, long_side or self.long_side)
        return self.preprocess.to_tensor(resized(image, size))[None]

    def local(self, image: Image.Image, long_side: int | None = None) -> LocalFeatures:
        tensor = self.local_tensor(image, long_side)
        (feature_map,) = self.descriptor_graph.run([LOCAL], {INPUT: tensor})
        _, channels, rows, cols = feature_map.shape
        cells = feature_map[0].reshape(channels, rows * cols).T
        return LocalFeatures(
            np.ascontiguousarray(cells, dtype=np.float32),
            grid_xy(rows, cols),
            (rows, cols),
            image.size[0] / image.size[1],
        )

    def descriptor_fingerprint(self, image: Image.Image) -> np.ndarray:
        """The fingerprint output of the descriptor graph on the usual 224 crop (must
        equal the embedder's: a check that both graphs are the same network)."""
        graph = self.descriptor_graph
        tensor = self.fingerprint_tensor(image)
        out: np.ndarray = graph.run([FINGERPRINT], {INPUT: tensor})[0][0]
        return out
