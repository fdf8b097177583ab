"""The photos every graph is checked on (photos/, see its README): real photos rather
than noise. The export checks its graphs against PyTorch on them, and the runtime
choice checks each candidate runtime against the fp32 graph on them."""

from importlib import resources

import numpy as np

from photosearch_embedder.preprocess import PreprocessSpec
from photosearch_embedder.variants import parse_variants


def calibration_photos() -> list[bytes]:
    """Real photos shipped with the package, in name order."""
    folder = resources.files("photosearch_embedder") / "photos"
    photos = sorted((f for f in folder.iterdir() if f.name.endswith(".jpg")), key=lambda f: f.name)
    return [f.read_bytes() for f in photos]


def fingerprint_inputs(
    preprocess: PreprocessSpec, views: tuple[str, ...] = ("mirror",)
) -> np.ndarray:
    """The calibration photos (and the extra `views` of each, e.g. their mirror images),
    as the fingerprint graph's input."""
    variants = parse_variants(list(views))
    return np.concatenate([preprocess.tensors(p, variants) for p in calibration_photos()])


def local_inputs(preprocess: PreprocessSpec, turns: tuple[int, ...] = (0,)) -> list[np.ndarray]:
    """Each calibration photo turned clockwise by each of `turns`, as the local graph's
    (1, 3, H, W) input (a quarter turn gives another shape: the graph's sizes are dynamic)."""
    inputs = []
    for photo in calibration_photos():
        image = preprocess.decode(photo, parse_variants([]))
        inputs += [preprocess.local_tensor(image, degrees) for degrees in turns]
    return inputs


def min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    """The smallest cosine between matching rows of two sets of unit vectors."""
    return float(np.min(np.sum(a * b, axis=1)))
