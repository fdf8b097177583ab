"""local.onnx, the local-descriptor graph: it equals the untouched PyTorch models
(transformers' DINOv2, geffnet's EfficientNet-Lite0 with its real weights) followed by
the PCA the export fits, at several photo shapes, with dynamic height and width."""

import io
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
import torch
from PIL import Image

from photosearch.common.model_files import ModelFiles
from photosearch_embedder.export.calibration import calibration_photos
from photosearch_embedder.export.local_graph import (
    Projection,
    calibration_views,
    cells_of,
    fit_pca,
    local_features,
)
from photosearch_embedder.export.local_onnx import export_local
from photosearch_embedder.export.weights import load_dinov2, load_efficientnet_lite0
from photosearch_embedder.models import ModelSpec, spec_for
from photosearch_embedder.preprocess import LocalSpec, PreprocessSpec
from photosearch_embedder.variants import parse_variants
from tests.support.embedder_models import TINY_NAME, photo

pytestmark = pytest.mark.slow


def reference_projection(spec: ModelSpec) -> Projection:
    """The PCA fitted again, in this process, exactly as the export fits it."""
    planned = spec.preprocess.with_local(spec.local)
    cells = cells_of(local_features(spec), calibration_views(calibration_photos(), planned))
    return fit_pca(cells, spec.local.dim)


def projected(cells: np.ndarray, projection: Projection) -> np.ndarray:
    """(n, d) unit cells -> (n, dim) unit cells, as the graph's 1x1 convolution does."""
    reduced = (cells - projection.mean) @ projection.components.T
    out: np.ndarray = reduced / np.linalg.norm(reduced, axis=1, keepdims=True)
    return out


def run_local(path: Path, tensor: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out: np.ndarray = session.run(["local"], {"pixel_values": tensor})[0]
    return out


def min_cosine(feature_map: np.ndarray, expected: np.ndarray) -> float:
    """feature_map (1, dim, rows, cols) vs expected (rows * cols, dim)."""
    cells = feature_map[0].reshape(feature_map.shape[1], -1).T
    return float(np.min(np.sum(cells * expected, axis=1)))


def decoded(name: str, size: tuple[int, int] | None = None) -> Image.Image:
    image = Image.open(io.BytesIO(photo(name))).convert("RGB")
    return image.resize(size, Image.Resampling.BICUBIC) if size else image


def test_tiny_dinov2_local_graph_equals_transformers_patch_tokens(
    tiny_model: ModelFiles, tiny_checkpoint: Path
) -> None:
    spec = spec_for(str(tiny_checkpoint), TINY_NAME)
    preprocess = PreprocessSpec.from_json(tiny_model.preprocess())
    # The tiny model's tokens have 48 values: the PCA keeps all of them (64 for real ones).
    assert preprocess.local == LocalSpec(448, multiple=14, dim=48)
    model = load_dinov2(str(tiny_checkpoint))  # transformers as it is, not the export's
    projection = reference_projection(spec)
    chelsea = decoded("chelsea")  # 451 x 300
    cases = [
        (preprocess.local_tensor(chelsea), (21, 32)),
        (preprocess.local_tensor(chelsea, 90), (32, 21)),
        # The checkpoint's own 518 x 518: transformers skips the interpolation there.
        (preprocess.to_tensor(chelsea.resize((518, 518)))[None], (37, 37)),
    ]
    for tensor, grid in cases:
        got = run_local(tiny_model.directory / "local.onnx", tensor)
        assert got.shape == (1, 48, *grid)
        with torch.no_grad():
            tokens = model(pixel_values=torch.from_numpy(tensor)).last_hidden_state[0, 1:]
        cells = torch.nn.functional.normalize(tokens, dim=-1).numpy()
        assert min_cosine(got, projected(cells, projection)) >= 0.9999


@pytest.fixture(scope="module")
def efficientnet_local(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, LocalSpec]:
    path = tmp_path_factory.mktemp("efficientnet-local") / "local.onnx"
    local, checks = export_local(spec_for("efficientnet-lite0"), path, calibration_photos())
    assert checks["local_vs_pytorch_min_cosine"] >= 0.9999
    return path, local


def test_efficientnet_local_graph_equals_geffnet_block_4(
    efficientnet_local: tuple[Path, LocalSpec],
) -> None:
    path, local = efficientnet_local
    assert local == LocalSpec(448, multiple=32, dim=64)
    spec = spec_for("efficientnet-lite0")
    preprocess = spec.preprocess.with_local(local)
    net: Any = load_efficientnet_lite0()  # geffnet's own "SAME" padding, computed per input
    projection = reference_projection(spec)
    for image, grid in [
        (decoded("astronaut", (448, 320)), (20, 28)),
        (decoded("astronaut", (448, 320)).rotate(90, expand=True), (28, 20)),
        (decoded("coffee"), (18, 28)),  # 600 x 400 -> 448 x 298.7 -> 448 x 288
    ]:
        tensor = preprocess.local_tensor(image)
        got = run_local(path, tensor)
        assert got.shape == (1, 64, *grid)
        with torch.no_grad():
            x = net.act1(net.bn1(net.conv_stem(torch.from_numpy(tensor))))
            for block in list(net.blocks)[:5]:
                x = block(x)
        cells = torch.nn.functional.normalize(x, dim=1)[0].reshape(112, -1).T.numpy()
        assert min_cosine(got, projected(cells, projection)) >= 0.9999
        assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_the_pca_is_deterministic_and_ignores_the_order_of_its_samples() -> None:
    spec = spec_for("efficientnet-lite0")
    planned = spec.preprocess.with_local(spec.local)
    views = calibration_views(calibration_photos(), planned)
    # Three photos, each as taken and mirrored, at long sides 320, 448 and 640.
    assert len(views) == 18 and {max(v.shape[2:]) for v in views} == {320, 448, 640}
    cells = cells_of(local_features(spec), views)
    first = fit_pca(cells, 64)
    again = fit_pca(cells[np.random.default_rng(1).permutation(len(cells))], 64)
    assert first.components.shape == (64, 112)
    assert np.allclose(first.mean, again.mean, atol=1e-6)
    assert np.allclose(first.components, again.components, atol=1e-4)
    largest = np.abs(first.components).argmax(axis=1)
    assert np.all(first.components[np.arange(64), largest] > 0)  # one sign per direction
    gram = first.components @ first.components.T
    assert np.allclose(gram, np.eye(64), atol=1e-5)


def test_the_calibration_views_are_decoded_as_the_service_decodes(
    tiny_model: ModelFiles,
) -> None:
    preprocess = PreprocessSpec.from_json(tiny_model.preprocess())
    data = calibration_photos()[0]
    views = calibration_views([data], preprocess)
    image = preprocess.decode(data, parse_variants([]))
    assert len(views) == 6
    expected = preprocess.with_local(LocalSpec(448, 14, 48)).local_tensor(image)
    assert np.array_equal(views[1], expected)


def test_a_vit_that_cannot_be_exported_with_dynamic_sizes_falls_back_to_a_square_input(
    tiny_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Injected fault: the exporter refuses dynamic height and width."""

    def refuse(name: str, **_: object) -> None:
        raise RuntimeError(f"cannot make {name} dynamic")

    monkeypatch.setattr(torch.export, "Dim", refuse)
    spec = spec_for(str(tiny_checkpoint), TINY_NAME)
    path = tmp_path / "local.onnx"
    local, checks = export_local(spec, path, calibration_photos())
    assert local == LocalSpec(448, multiple=14, dim=48, square=True)
    assert checks["local_vs_pytorch_min_cosine"] >= 0.9999
    preprocess = spec.preprocess.with_local(local)
    tensor = preprocess.local_tensor(decoded("chelsea"))  # stretched to 448 x 448
    assert tensor.shape == (1, 3, 448, 448)
    assert run_local(path, tensor).shape == (1, 48, 32, 32)
