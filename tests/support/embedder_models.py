"""Small real models and photos for the embedder's tests: a random tiny DINOv2 saved as
a transformers checkpoint and exported through the real export path, once per test
session. No hub is touched. The conftests of tests/unit/embedder and
tests/integration/embedder define their model fixtures with these."""

import io
import os
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from photosearch.common.model_files import ModelFiles

os.environ["HF_HUB_OFFLINE"] = "1"

TINY_NAME = "test/tiny-dinov2"
_lock = threading.Lock()
_exports: dict[tuple[Path, str], ModelFiles] = {}


def models_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's one directory for checkpoints and exports (shared by every
    conftest that asks, so the tiny model is exported once per session)."""
    root = tmp_path_factory.getbasetemp() / "embedder-models"
    root.mkdir(exist_ok=True)
    return root


def save_tiny_dinov2(directory: Path, *, registers: bool = False, seed: int = 0) -> Path:
    import torch
    from transformers import (
        Dinov2Config,
        Dinov2Model,
        Dinov2WithRegistersConfig,
        Dinov2WithRegistersModel,
    )

    if (directory / "config.json").exists():
        return directory
    torch.manual_seed(seed)
    shape = dict(
        hidden_size=48,
        num_hidden_layers=2,
        num_attention_heads=3,
        intermediate_size=96,
        patch_size=14,
        image_size=518,  # as the real checkpoints: 224-px inputs interpolate positions
        layerscale_value=1.0,
        layer_norm_eps=1e-6,
    )
    if registers:
        model = Dinov2WithRegistersModel(Dinov2WithRegistersConfig(num_register_tokens=4, **shape))
    else:
        model = Dinov2Model(Dinov2Config(**shape))
    model.save_pretrained(directory)
    return directory


def exported_tiny(root: Path, quantize: str = "none") -> ModelFiles:
    """The tiny DINOv2 exported into root/cache (once per session and quantization)."""
    from photosearch_embedder.export import export_model
    from photosearch_embedder.models import spec_for

    key = (root, quantize)
    with _lock:
        if key not in _exports:
            checkpoint = save_tiny_dinov2(root / "tiny-dinov2")
            spec = spec_for(str(checkpoint), TINY_NAME)
            _exports[key] = export_model(spec, root / f"cache-{quantize}", quantize)  # type: ignore[arg-type]
        return _exports[key]


def photo(name: str = "chelsea", size: int | None = None, fmt: str = "JPEG") -> bytes:
    """A real photo from scikit-image's bundled samples, optionally resized, encoded."""
    import skimage.data

    image = Image.fromarray(getattr(skimage.data, name)())
    if size:
        scale = size / max(image.size)
        image = image.resize((round(image.width * scale), round(image.height * scale)))
    buffer = io.BytesIO()
    image.save(buffer, fmt, quality=90)
    return buffer.getvalue()


def photo_like(height: int, width: int, seed: int) -> np.ndarray:
    """8-bit RGB pixels with a photo's mix of smooth gradients and noise, any size."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    smooth = np.stack([x * 255 / width, y * 255 / height, (x + y) % 255], axis=-1)
    return np.clip(smooth + rng.normal(0, 40, smooth.shape), 0, 255).astype(np.uint8)


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b = b / np.linalg.norm(b, axis=-1, keepdims=True)
    return np.sum(a * b, axis=-1)
