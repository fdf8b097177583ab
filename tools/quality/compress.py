"""Smaller local descriptors: a PCA projection (fitted once per model on generic photos
that ship with scikit-image, never on evaluation data) to `dim` dimensions, then
L2-normalised and, optionally, int8 (x * 127, rounded): 1 byte per value on the wire
and in storage. Cosine on the int8 values is computed after scaling back."""

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image

from photosearch.common.local import dequantise, quantise
from tools.quality.extract import Extractor
from tools.quality.features import PhotoFeatures

GENERIC_PHOTOS = ("astronaut", "chelsea", "coffee", "hubble_deep_field", "rocket", "retina",
                  "immunohistochemistry", "colorwheel")  # fmt: skip


@dataclass(frozen=True)
class Projection:
    mean: np.ndarray  # (d,)
    components: np.ndarray  # (dim, d), rows orthonormal

    @property
    def dim(self) -> int:
        return int(self.components.shape[0])

    def project(self, cells: np.ndarray) -> np.ndarray:
        reduced = (cells - self.mean) @ self.components.T
        norms = np.linalg.norm(reduced, axis=1, keepdims=True)
        out: np.ndarray = (reduced / np.maximum(norms, 1e-12)).astype(np.float32)
        return out


def fit_pca(samples: np.ndarray, dim: int) -> Projection:
    """Principal directions of `samples` (n, d) -> a `dim`-d projection."""
    if dim > samples.shape[1]:
        raise ValueError(f"cannot project {samples.shape[1]}-d descriptors to {dim} dimensions")
    mean = samples.mean(axis=0)
    _, _, vt = np.linalg.svd(samples - mean, full_matrices=False)
    return Projection(mean.astype(np.float32), vt[:dim].astype(np.float32))


def generic_cells(extractor: Extractor) -> np.ndarray:
    """Local descriptors of scikit-image's bundled photos at three sizes, both ways round."""
    import skimage.data

    rows = []
    for name in GENERIC_PHOTOS:
        image = Image.fromarray(getattr(skimage.data, name)()).convert("RGB")
        for view in (image, image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)):
            for side in (320, 448, 640):
                rows.append(extractor.local(view, side).cells)
    return np.concatenate(rows)


def default_projection(extractor: Extractor, cache_dir: Path, dim: int) -> Projection:
    path = cache_dir / f"pca-{dim}.npz"
    if path.is_file():
        data = np.load(path)
        return Projection(data["mean"], data["components"])
    projection = fit_pca(generic_cells(extractor), dim)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, mean=projection.mean, components=projection.components)
    return projection


def apply(features: PhotoFeatures, projection: Projection, int8: bool) -> PhotoFeatures:
    if features.local is None:
        return features
    cells = projection.project(features.local.cells)
    if int8:
        cells = dequantise(quantise(cells))
    return PhotoFeatures(features.fingerprints, replace(features.local, cells=cells))
