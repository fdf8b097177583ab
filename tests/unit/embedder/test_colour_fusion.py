"""The colour-fused fingerprint: its cosine is w * cos(network) + (1 - w) * cos(colour),
and the exported ONNX graph computes what the PyTorch module computes. A tiny random
network stands in for the backbone (the colour part and the fusion are what is new; the
real export of efficientnet-lite0-colour checks the same on calibration photos)."""

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from torch import nn

from photosearch_embedder.export.fingerprint_graph import ColourFused, ColourHistogram, Fingerprint
from photosearch_embedder.models import COLOUR_FUSION, spec_for
from photosearch_embedder.preprocess import INPUT_NAME, OUTPUT_NAME
from photosearch_embedder.variants import parse_variants
from tests.support.embedder_models import photo

SPEC = spec_for("efficientnet-lite0-colour")
PHOTOS = ("chelsea", "astronaut", "coffee", "rocket")


def _call(model: nn.Module, pixels: torch.Tensor) -> torch.Tensor:
    out: torch.Tensor = model(pixels)
    return out


def fused_module() -> ColourFused:
    torch.manual_seed(0)
    backbone = nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=4), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten()
    )
    pre = SPEC.preprocess
    colour = ColourHistogram(COLOUR_FUSION, pre.mean, pre.std, pre.crop_size)
    return ColourFused(Fingerprint(backbone, _call), colour, COLOUR_FUSION.weight).eval()


def pixels() -> np.ndarray:
    variants = parse_variants(["mirror"])
    return np.concatenate([SPEC.preprocess.tensors(photo(n), variants) for n in PHOTOS])


def test_the_colour_model_is_its_own_model_id_with_the_same_preprocessing() -> None:
    plain = spec_for("efficientnet-lite0")
    assert SPEC.model_id == "efficientnet-lite0-colour@1" != plain.model_id
    assert SPEC.preprocess == plain.preprocess
    assert SPEC.colour == COLOUR_FUSION and plain.colour is None
    assert COLOUR_FUSION.dim == 512  # 1280 + 512 stays under pgvector's 2,000-d HNSW limit


def test_fused_cosine_is_the_weighted_sum_of_network_and_colour_cosines() -> None:
    module = fused_module()
    x = torch.from_numpy(pixels())
    with torch.no_grad():
        g, h, v = module.fingerprint(x), module.colour(x), module(x)
    w = COLOUR_FUSION.weight
    assert torch.allclose(v.norm(dim=-1), torch.ones(len(x)), atol=1e-5)
    assert torch.allclose(h.norm(dim=-1), torch.ones(len(x)), atol=1e-5)
    expected = w * (g @ g.T) + (1 - w) * (h @ h.T)
    assert torch.allclose(v @ v.T, expected, atol=1e-5)
    # The colour part tells photos apart (not a constant) and ignores a mirror image.
    cos_h = (h @ h.T).numpy()
    assert np.allclose(np.diag(cos_h[0::2, 1::2]), 1.0, atol=1e-4)
    assert cos_h[0, 2] < 0.9


def test_onnx_graph_equals_the_pytorch_module(tmp_path: Path) -> None:
    module = fused_module()
    x = pixels()
    path = tmp_path / "fused.onnx"
    torch.onnx.export(
        module,
        (torch.from_numpy(x[:2]),),
        str(path),
        dynamo=True,
        input_names=[INPUT_NAME],
        output_names=[OUTPUT_NAME],
        dynamic_shapes={"pixel_values": {0: torch.export.Dim("batch", min=1, max=1024)}},
        opset_version=18,
        external_data=False,
        verbose=False,
    )
    with torch.no_grad():
        expected = module(torch.from_numpy(x)).numpy()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run([OUTPUT_NAME], {INPUT_NAME: x})[0]
    assert got.shape == (len(x), 8 + COLOUR_FUSION.dim)
    assert float(np.min(np.sum(got * expected, axis=1))) >= 0.9999


@pytest.mark.parametrize("name", ["efficientnet-lite0-colour@1", "efficientnet-lite0-colour"])
def test_the_name_parses_with_or_without_the_recipe(name: str) -> None:
    assert spec_for(name) == SPEC
