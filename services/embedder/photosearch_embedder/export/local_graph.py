"""The local-descriptor graph (local.onnx), PyTorch side.

    pixel_values (1, 3, H, W) float32, H and W dynamic (or fixed square, see below)
      -> local (1, dim, h, w): one unit vector per cell of a feature grid

The grid is the backbone's map at the layer that matched regions best offline
(docs/quality.md): EfficientNet-Lite0's block 4 (112 channels, stride 16; only the stem
and blocks 0..4 are in the graph), DINOv2's final layer-normed patch tokens (stride 14;
the class and register tokens dropped). Each cell is L2-normalised, projected by a PCA
fitted at export time (a 1x1 convolution: weight = components, bias = -components @
mean) and L2-normalised again. The PCA is fitted on the package's calibration photos
and their mirror images at three sizes, so every export of a model gives the same one."""

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from photosearch_embedder.export.weights import load_dinov2, load_efficientnet_lite0
from photosearch_embedder.models import ModelSpec
from photosearch_embedder.preprocess import LocalSpec, PreprocessSpec
from photosearch_embedder.variants import parse_variants

EFFICIENTNET_LOCAL_BLOCK = 4
# Long sides of the calibration views the PCA is fitted on (as tools/quality/compress.py).
CALIBRATION_SIDES = (320, 448, 640)


class FixedSamePadding(nn.Module):
    """A TensorFlow "SAME" convolution (geffnet's Conv2dSame pads by the input size)
    with the padding it has when the input's sides are multiples of its stride: the
    same numbers there, and an exporter with dynamic sizes has no symbolic padding to
    reason about (minutes faster)."""

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        self.conv = conv
        pads = []
        for k, s, d in zip(conv.kernel_size, conv.stride, conv.dilation, strict=True):
            total = max((k - 1) * d + 1 - s, 0)
            pads.append((total // 2, total - total // 2))
        (top, bottom), (left, right) = pads
        self.pads = (left, right, top, bottom)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        conv = self.conv
        padded = nn.functional.pad(x, self.pads)
        return nn.functional.conv2d(
            padded, conv.weight, conv.bias, conv.stride, 0, conv.dilation, conv.groups
        )


def _fix_same_padding(module: nn.Module) -> None:
    from geffnet.conv2d_layers import Conv2dSame

    for name, child in list(module.named_children()):
        if isinstance(child, Conv2dSame):
            setattr(module, name, FixedSamePadding(child))
        else:
            _fix_same_padding(child)


class EfficientNetLocal(nn.Module):
    """geffnet EfficientNet: stem and blocks 0..`block` -> unit cells. Exact for inputs
    whose sides are multiples of 32 (what the local preprocessing gives)."""

    def __init__(self, net: nn.Module, block: int = EFFICIENTNET_LOCAL_BLOCK) -> None:
        super().__init__()
        source: Any = net
        self.stem = nn.Sequential(source.conv_stem, source.bn1, source.act1)
        self.blocks = nn.Sequential(*list(source.blocks)[: block + 1])
        _fix_same_padding(self)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(self.blocks(self.stem(pixel_values)), dim=1)


def _interpolating_positions(embeddings: Any, antialias: bool) -> None:
    """Make a transformers DINOv2's position embeddings always interpolate to the input
    size (transformers returns them as they are at the checkpoint's own square size,
    a data-dependent branch the exporter cannot keep; interpolating to the same size is
    exact, so the numbers do not change)."""

    def interpolate(tokens: torch.Tensor, height: int, width: int) -> torch.Tensor:
        positions = embeddings.position_embeddings
        side = round((positions.shape[1] - 1) ** 0.5)
        dim = tokens.shape[-1]
        patch_h, patch_w = embeddings.patch_embeddings.patch_size
        grid = positions[:, 1:].reshape(1, side, side, dim).permute(0, 3, 1, 2)
        grid = nn.functional.interpolate(
            grid.to(torch.float32),
            size=(height // patch_h, width // patch_w),
            mode="bicubic",
            align_corners=False,
            antialias=antialias,
        ).to(positions.dtype)
        grid = grid.permute(0, 2, 3, 1).reshape(1, -1, dim)
        return torch.cat((positions[:, :1], grid), dim=1)

    embeddings.interpolate_pos_encoding = interpolate


class Dinov2Local(nn.Module):
    """transformers DINOv2 (with or without registers): the final layer-normed patch
    tokens as a (N, hidden, H/14, W/14) map of unit cells."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        config: Any = model.config
        self.skip = 1 + int(getattr(config, "num_register_tokens", 0) or 0)
        self.patch = int(config.patch_size)
        # Registers' transformers interpolates with antialiasing, plain DINOv2 without.
        _interpolating_positions(model.embeddings, antialias=self.skip > 1)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        tokens = self.model(pixel_values=pixel_values).last_hidden_state[:, self.skip :]
        rows = pixel_values.shape[2] // self.patch
        cols = pixel_values.shape[3] // self.patch
        grid = tokens.transpose(1, 2).reshape(tokens.shape[0], tokens.shape[2], rows, cols)
        return nn.functional.normalize(grid, dim=1)


@dataclass(frozen=True)
class Projection:
    """PCA of the cells: reduced = (cell - mean) @ components.T, then L2-normalised."""

    mean: np.ndarray  # (d,) float32
    components: np.ndarray  # (dim, d) float32, orthonormal rows

    @property
    def dim(self) -> int:
        return int(self.components.shape[0])


def fit_pca(cells: np.ndarray, dim: int) -> Projection:
    """Principal directions of `cells` (n, d), the first `dim` (at most d). Each
    direction's sign is fixed (its largest entry positive), so the same cells give the
    same projection whatever the linear-algebra library."""
    samples = cells.astype(np.float64)
    mean = samples.mean(axis=0)
    _, _, vt = np.linalg.svd(samples - mean, full_matrices=False)
    components = vt[: min(dim, samples.shape[1])]
    largest = np.argmax(np.abs(components), axis=1)
    signs = np.sign(components[np.arange(len(components)), largest])
    components = components * signs[:, None]
    return Projection(mean.astype(np.float32), components.astype(np.float32))


class ProjectedLocal(nn.Module):
    """Backbone cells -> PCA (1x1 convolution) -> unit cells of `projection.dim`."""

    def __init__(self, features: nn.Module, projection: Projection) -> None:
        super().__init__()
        self.features = features
        components = torch.from_numpy(projection.components)
        self.project = nn.Conv2d(components.shape[1], components.shape[0], kernel_size=1)
        with torch.no_grad():
            self.project.weight.copy_(components[:, :, None, None])
            bias: Any = self.project.bias
            bias.copy_(-(components @ torch.from_numpy(projection.mean)))

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(self.project(self.features(pixel_values)), dim=1)

    @classmethod
    def from_weights(
        cls, features: nn.Module, weight: np.ndarray, bias: np.ndarray
    ) -> "ProjectedLocal":
        """The module with the 1x1 convolution an export wrote (weight (dim, d, 1, 1))."""
        components = weight[:, :, 0, 0].astype(np.float32)
        module = cls(features, Projection(np.zeros(components.shape[1], np.float32), components))
        with torch.no_grad():  # the bias as written, not recomputed from a mean
            project_bias: Any = module.project.bias
            project_bias.copy_(torch.from_numpy(bias.astype(np.float32)))
        return module


def local_features(spec: ModelSpec, *, eager_attention: bool = True) -> nn.Module:
    """The backbone part of the local graph for `spec` (unit cells, before the PCA)."""
    if spec.family == "efficientnet-lite0":
        return EfficientNetLocal(load_efficientnet_lite0()).eval()
    source = str(spec.checkpoint_dir or spec.name)
    return Dinov2Local(load_dinov2(source, eager_attention=eager_attention)).eval()


def calibration_views(photos: list[bytes], preprocess: PreprocessSpec) -> list[np.ndarray]:
    """Local-graph inputs of the calibration photos and their mirror images at each of
    CALIBRATION_SIDES (the grid rule of `preprocess.local`, square or not)."""
    assert preprocess.local is not None
    views = []
    for data in photos:
        image = preprocess.decode(data, parse_variants([]))
        for view in (image, image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)):
            for side in CALIBRATION_SIDES:
                sized = preprocess.with_local(_at_side(preprocess.local, side))
                views.append(sized.local_tensor(view))
    return views


def _at_side(local: LocalSpec, side: int) -> LocalSpec:
    return LocalSpec(side, local.multiple, local.dim, local.square)


def cells_of(module: nn.Module, views: list[np.ndarray]) -> np.ndarray:
    """(sum of cells, channels) of `module`'s maps of `views`."""
    rows = []
    with torch.no_grad():
        for view in views:
            feature_map = module(torch.from_numpy(view))[0]
            rows.append(feature_map.reshape(feature_map.shape[0], -1).T.numpy())
    return np.concatenate(rows)
