"""The ablation's numpy colour descriptor is the one the embedder exports: same numbers
for the product's settings, so the measured table describes the product."""

import numpy as np
import torch

from photosearch_embedder.export.fingerprint_graph import ColourHistogram
from photosearch_embedder.models import COLOUR_FUSION, spec_for
from photosearch_embedder.variants import parse_variants
from tests.support.embedder_models import photo
from tools.quality.colour import ColourSpec, fuse, histogram

PRODUCT = ColourSpec(
    "lab",
    COLOUR_FUSION.bins,
    pool=COLOUR_FUSION.pool,
    centre=COLOUR_FUSION.centre_sigma,
    sigma_bins=COLOUR_FUSION.kernel_bins,
)


def test_numpy_histogram_equals_the_exported_module() -> None:
    pre = spec_for("efficientnet-lite0-colour").preprocess
    pixels = np.concatenate(
        [pre.tensors(photo(n), parse_variants([])) for n in ("chelsea", "astronaut", "coffee")]
    )
    mine = histogram(pixels, PRODUCT, np.asarray(pre.mean), np.asarray(pre.std))
    module = ColourHistogram(COLOUR_FUSION, pre.mean, pre.std, pre.crop_size)
    with torch.no_grad():
        theirs = module(torch.from_numpy(pixels)).numpy()
    assert mine.shape == theirs.shape == (3, COLOUR_FUSION.dim)
    assert float(np.min(np.sum(mine * theirs, axis=1))) >= 0.9999
    assert float(np.max(mine @ mine.T - np.eye(3))) < 0.9  # the photos differ in colour


def test_fuse_weighs_the_two_cosines() -> None:
    rng = np.random.default_rng(0)
    g = rng.normal(size=(4, 16))
    h = rng.random((4, 8))
    g /= np.linalg.norm(g, axis=1, keepdims=True)
    h /= np.linalg.norm(h, axis=1, keepdims=True)
    v = fuse(g, h, 0.7)
    assert np.allclose(v @ v.T, 0.7 * g @ g.T + 0.3 * h @ h.T, atol=1e-6)
