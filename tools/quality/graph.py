"""The descriptor graph: one ONNX file with two outputs, what the browser would run.

    pixel_values (N, 3, H, W) float32, any H and W
      -> fingerprint (N, D)        the L2-normalised whole-image vector (as today)
      -> local       (N, C, h, w)  an intermediate feature map, one L2-normalised
                                   descriptor per cell (stride 16 for EfficientNet)

Only this module imports torch. The layer that gives the local map is a per-model
parameter (`LOCAL_LAYERS`): for EfficientNet-Lite0 the output of block 4 (112
channels, stride 16); for a ViT such as DINOv2 it would be the patch tokens."""

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

FINGERPRINT = "fingerprint"
LOCAL = "local"
INPUT = "pixel_values"
OPSET = 18
# Which stage of each model family gives the local descriptors.
LOCAL_LAYERS = {"efficientnet-lite0": 4, "efficientnet-lite0-colour": 4}


class EfficientNetDescriptors(nn.Module):
    """geffnet EfficientNet: stem, blocks 0..local_block for the local map, the rest
    of the blocks, head and global average pool for the fingerprint."""

    def __init__(self, net: nn.Module, local_block: int) -> None:
        super().__init__()
        self.net = net
        self.local_block = local_block

    def forward(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        net: Any = self.net
        x = net.act1(net.bn1(net.conv_stem(pixel_values)))
        local = x
        for index, block in enumerate(net.blocks):  # type: ignore[arg-type]
            x = block(x)
            if index == self.local_block:
                local = x
        x = net.act2(net.bn2(net.conv_head(x)))
        pooled = x.mean(dim=(2, 3))
        fingerprint = nn.functional.normalize(pooled, dim=-1)
        return fingerprint, nn.functional.normalize(local, dim=1)


def descriptor_module(model: str) -> nn.Module:
    if model not in LOCAL_LAYERS:
        raise ValueError(f"no descriptor graph for {model!r}; known: {sorted(LOCAL_LAYERS)}")
    from photosearch_embedder.export.weights import load_efficientnet_lite0

    return EfficientNetDescriptors(load_efficientnet_lite0(), LOCAL_LAYERS[model]).eval()


def export_descriptor_graph(model: str, path: Path) -> Path:
    """Write the two-output graph to `path` (dynamic batch, height and width)."""
    module = descriptor_module(model)
    sample = torch.from_numpy(np.random.default_rng(0).normal(size=(1, 3, 320, 448)))
    sample = sample.float()
    batch = torch.export.Dim("batch", min=1, max=1024)
    height = torch.export.Dim("height", min=32, max=2048)
    width = torch.export.Dim("width", min=32, max=2048)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.onnx")
    torch.onnx.export(
        module,
        (sample,),
        str(tmp),
        dynamo=True,
        input_names=[INPUT],
        output_names=[FINGERPRINT, LOCAL],
        dynamic_shapes={"pixel_values": {0: batch, 2: height, 3: width}},
        opset_version=OPSET,
        external_data=False,
        verbose=False,
    )
    tmp.replace(path)
    return path
