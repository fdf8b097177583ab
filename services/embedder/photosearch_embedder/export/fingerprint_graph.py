"""The fingerprint graph, PyTorch side: each model family's network wrapped so that the
exported graph maps `pixel_values` to the L2-normalised fingerprint (with the colour
histogram fused in where the model asks for it)."""

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from photosearch_embedder.export.weights import load_dinov2, load_efficientnet_lite0
from photosearch_embedder.models import ColourFusion, ModelSpec


class Fingerprint(nn.Module):
    """backbone features -> x / max(||x||, eps), the vector every service compares."""

    def __init__(
        self, backbone: nn.Module, features: Callable[[nn.Module, torch.Tensor], torch.Tensor]
    ):
        super().__init__()
        self.backbone = backbone
        self._features = features

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(self._features(self.backbone, pixel_values), dim=-1)


# sRGB (D65) -> XYZ, and the D65 white point: CIELAB as colour science defines it.
SRGB_TO_XYZ = (
    (0.4124, 0.3576, 0.1805),
    (0.2126, 0.7152, 0.0722),
    (0.0193, 0.1192, 0.9505),
)
D65_WHITE = (0.9505, 1.0, 1.089)


class ColourHistogram(nn.Module):
    """Model input (N, 3, S, S) -> (N, bins**3) unit colour descriptor (ColourFusion).
    Elementwise ops, one average pool and two matrix products: exports to ONNX and runs
    in onnxruntime-web as is. a and b are scaled by 1/160 around 0.5 and clamped."""

    mean: torch.Tensor
    std: torch.Tensor
    to_xyz: torch.Tensor
    white: torch.Tensor
    centres: torch.Tensor
    pixel_weight: torch.Tensor

    def __init__(
        self,
        fusion: ColourFusion,
        mean: tuple[float, float, float],
        std: tuple[float, float, float],
        size: int,
    ) -> None:
        super().__init__()
        self.bins = fusion.bins
        self.kernel_bins = fusion.kernel_bins
        self.pool = fusion.pool
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1))
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1))
        self.register_buffer("to_xyz", torch.tensor(SRGB_TO_XYZ))
        self.register_buffer("white", torch.tensor(D65_WHITE).view(1, 3, 1))
        self.register_buffer("centres", (torch.arange(fusion.bins) + 0.5) / fusion.bins)
        side = size // fusion.pool
        offsets = (torch.arange(side, dtype=torch.float64) + 0.5) / side - 0.5
        squared = offsets[:, None] ** 2 + offsets[None, :] ** 2
        weight = torch.exp(-squared / (2 * fusion.centre_sigma**2)).flatten()
        self.register_buffer("pixel_weight", (weight / weight.sum()).float().view(1, 1, -1))

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        pooled = nn.functional.avg_pool2d(pixel_values, self.pool).flatten(2)  # (N, 3, P)
        rgb = torch.clamp(pooled * self.std + self.mean, 0.0, 1.0)
        linear = torch.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
        f = torch.clamp(torch.matmul(self.to_xyz, linear) / self.white, min=1e-4) ** (1 / 3)
        lab = torch.stack(
            [
                (116 * f[:, 1] - 16) / 100,
                (500 * (f[:, 0] - f[:, 1])) / 160 + 0.5,
                (200 * (f[:, 1] - f[:, 2])) / 160 + 0.5,
            ],
            dim=1,
        )
        centres = self.centres
        axes = torch.clamp(torch.clamp(lab, 0.0, 1.0), centres[0], centres[-1])
        # Triangular memberships (N, 3, bins, P) of each pixel in the bins of each axis.
        distance = (axes[:, :, None, :] - centres[None, None, :, None]).abs() * self.bins
        member = torch.relu(1 - distance / self.kernel_bins)
        lightness_a = (member[:, 0, :, None, :] * member[:, 1, None, :, :]).flatten(1, 2)
        b_weighted = member[:, 2] * self.pixel_weight
        joint = torch.matmul(lightness_a, b_weighted.transpose(1, 2)).flatten(1)
        return nn.functional.normalize(torch.sqrt(torch.relu(joint)), dim=-1)


class ColourFused(nn.Module):
    """concat(sqrt(w) * fingerprint, sqrt(1 - w) * colour): unit, and its cosine is the
    weighted sum of the two cosines."""

    def __init__(self, fingerprint: nn.Module, colour: ColourHistogram, weight: float) -> None:
        super().__init__()
        self.fingerprint = fingerprint
        self.colour = colour
        self.weight = weight

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        g = self.fingerprint(pixel_values)
        h = self.colour(pixel_values)
        fused = torch.cat([g * self.weight**0.5, h * (1 - self.weight) ** 0.5], dim=-1)
        return nn.functional.normalize(fused, dim=-1)


def _pooler_output(model: nn.Module, pixel_values: torch.Tensor) -> torch.Tensor:
    output: torch.Tensor = model(pixel_values=pixel_values).pooler_output
    return output


def _call(model: nn.Module, pixel_values: torch.Tensor) -> torch.Tensor:
    output: torch.Tensor = model(pixel_values)
    return output


def bake_position_embeddings(model: nn.Module, image_size: int) -> None:
    """Pre-compute the position embeddings for `image_size` inputs: the graph then has
    no bicubic interpolation in it (cleaner, faster, same numbers at that size)."""
    embeddings: Any = model.embeddings
    hidden = embeddings.cls_token.shape[-1]
    patch = embeddings.patch_embeddings.patch_size
    patch_h, patch_w = (patch, patch) if isinstance(patch, int) else patch
    tokens = (image_size // patch_h) * (image_size // patch_w) + 1
    with torch.no_grad():
        probe = torch.zeros(1, tokens, hidden)
        baked = embeddings.interpolate_pos_encoding(probe, image_size, image_size).detach().clone()
    embeddings.register_buffer("baked_position_embeddings", baked)

    def fixed(_embeddings: torch.Tensor, height: int, width: int) -> torch.Tensor:
        result: torch.Tensor = embeddings.baked_position_embeddings
        return result

    embeddings.interpolate_pos_encoding = fixed


def fingerprint_module(spec: ModelSpec, *, eager_attention: bool = True) -> nn.Module:
    """The module that gets exported for `spec` (DINOv2 with transformers' eager attention,
    which the exporter traces; PyTorch serving takes its faster SDPA attention)."""
    if spec.family == "efficientnet-lite0":
        network = Fingerprint(load_efficientnet_lite0(), _call).eval()
    else:
        model = load_dinov2(str(spec.checkpoint_dir or spec.name), eager_attention=eager_attention)
        bake_position_embeddings(model, spec.preprocess.crop_size)
        network = Fingerprint(model, _pooler_output).eval()
    if spec.colour is None:
        return network
    pre = spec.preprocess
    colour = ColourHistogram(spec.colour, pre.mean, pre.std, pre.crop_size)
    return ColourFused(network, colour, spec.colour.weight).eval()


def reference_fingerprints(model: nn.Module, pixel_values: torch.Tensor) -> torch.Tensor:
    """What transformers itself gives (pooler_output, L2-normalised): the export's yardstick."""
    with torch.no_grad():
        return nn.functional.normalize(_pooler_output(model, pixel_values), dim=-1)
