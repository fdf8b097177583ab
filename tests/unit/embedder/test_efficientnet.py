"""The offline model's real weights load into the right definition: the classifier
recognises a cat, and the fingerprint is the 1280-d pooled feature."""

import numpy as np
import pytest
import torch

from photosearch_embedder.export.fingerprint_graph import fingerprint_module
from photosearch_embedder.export.weights import load_efficientnet_lite0
from photosearch_embedder.models import spec_for
from photosearch_embedder.variants import parse_variants
from tests.support.embedder_models import photo

pytestmark = pytest.mark.slow


def test_real_weights_see_a_cat_and_the_fingerprint_is_the_pooled_feature() -> None:
    spec = spec_for("efficientnet-lite0")
    pixels = torch.from_numpy(spec.preprocess.tensors(photo("chelsea"), parse_variants([])))
    with torch.no_grad():
        logits = load_efficientnet_lite0(classifier=True)(pixels)
        fingerprint = fingerprint_module(spec)(pixels)
    assert logits.shape == (1, 1000)
    assert 281 <= int(logits.argmax()) <= 285  # ImageNet's domestic cats
    assert fingerprint.shape == (1, 1280)
    assert np.isclose(float(fingerprint.norm()), 1.0, atol=1e-5)
