"""Image -> model input, defined once as data (preprocess.json) that the server and
the browser both read, so a photo gives the same fingerprint on either side.

The steps, in order (every number comes from the spec):
 1. decode; apply the EXIF orientation; take the first frame of an animation;
 2. flatten transparency onto `alpha_background`; convert to 8-bit RGB;
 3. resize so the short side is `resize.short_side` and the long side is
    floor(long * short_side / short), with Pillow's BICUBIC filter (a = -0.5,
    antialiased: when shrinking the kernel is widened by the scale factor), the
    horizontal pass first, each pass rounded to 8 bits, as Pillow's
    `Image.resize((w, h), Image.Resampling.BICUBIC, reducing_gap=None)` computes each
    pass on 8-bit RGB (resample.py);
 4. centre crop `center_crop.width` x `center_crop.height` at
    left = floor((w - width) / 2), top = floor((h - height) / 2);
 5. x = value * `scale`, then (x - mean[c]) / std[c] per RGB channel;
 6. float32 tensor in NCHW layout, named `input_name`.

Local descriptors (the `local` section; models exported with a local graph): steps 1-2
as above; NO crop; resize with the same filter so the long side is `long_side` and the
short side is max(multiple, floor(short * long_side / long / multiple + 0.5) * multiple)
(both sides `long_side` when `square`); steps 5-6; run `local.onnx`: `input_name` ->
`output_name` (1, dim, rows, cols), one unit vector per cell.
"""

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from PIL import Image

from photosearch.common.images import WHITE, decode_image
from photosearch_embedder.resample import resized, resized_window
from photosearch_embedder.variants import Variant

SPEC_VERSION = 1
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INPUT_NAME = "pixel_values"
OUTPUT_NAME = "fingerprint"
LOCAL_ONNX = "local.onnx"
LOCAL_OUTPUT_NAME = "local"
# Clockwise turns a caller may ask local descriptors for, as PIL transposes (whose
# ROTATE_* names count counter-clockwise).
ROTATIONS = {
    0: None,
    90: Image.Transpose.ROTATE_270,
    180: Image.Transpose.ROTATE_180,
    270: Image.Transpose.ROTATE_90,
}
# A JPEG is decoded at a reduced DCT scale only while it stays at least this many
# times the resize target, so the result is the same to within JPEG noise.
DRAFT_MARGIN = 2


@dataclass(frozen=True)
class LocalSpec:
    """How the whole photo is sized for the local graph, and what the graph gives."""

    long_side: int
    multiple: int
    dim: int
    square: bool = False
    onnx: str = LOCAL_ONNX
    input_name: str = INPUT_NAME
    output_name: str = LOCAL_OUTPUT_NAME

    def size(self, width: int, height: int) -> tuple[int, int]:
        """(width, height) the photo is resized to."""
        if self.square:
            return self.long_side, self.long_side
        scale = self.long_side / max(width, height)
        m = self.multiple

        def side(value: int) -> int:
            return max(m, math.floor(value * scale / m + 0.5) * m)

        return (self.long_side, side(height)) if width >= height else (side(width), self.long_side)

    def to_json(self) -> dict[str, Any]:
        # The browser reads these names: keep them as they are.
        return {
            "onnx": self.onnx,
            "input_name": self.input_name,
            "output_name": self.output_name,
            "long_side": self.long_side,
            "multiple": self.multiple,
            "square": self.square,
            "dim": self.dim,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "LocalSpec":
        return cls(
            long_side=int(data["long_side"]),
            multiple=int(data["multiple"]),
            dim=int(data["dim"]),
            square=bool(data["square"]),
            onnx=str(data["onnx"]),
            input_name=str(data["input_name"]),
            output_name=str(data["output_name"]),
        )


def rotate_clockwise(image: Image.Image, degrees: int) -> Image.Image:
    """`image` turned clockwise by 0, 90, 180 or 270 degrees."""
    transpose = ROTATIONS[degrees]
    return image if transpose is None else image.transpose(transpose)


@dataclass(frozen=True)
class PreprocessSpec:
    resize_short_side: int
    crop_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    scale: float = 1 / 255
    background: tuple[int, int, int] = WHITE
    # The local-descriptor pass (None: the export has no local graph).
    local: LocalSpec | None = None

    def with_local(self, local: LocalSpec | None) -> "PreprocessSpec":
        return replace(self, local=local)

    def to_json(self) -> dict[str, Any]:
        document = self._fingerprint_json()
        if self.local is not None:
            document["local"] = self.local.to_json()
        return document

    def _fingerprint_json(self) -> dict[str, Any]:
        return {
            "version": SPEC_VERSION,
            "order": [
                "decode",
                "exif_orientation",
                "first_frame",
                "flatten_alpha",
                "rgb8",
                "resize",
                "center_crop",
                "scale",
                "normalize",
                "layout",
            ],
            "exif_orientation": True,
            "first_frame": True,
            "alpha_background": list(self.background),
            "color": "RGB",
            "resize": {
                "short_side": self.resize_short_side,
                "long_side": "floor(long * short_side / short)",
                "filter": "bicubic",
                "bicubic_a": -0.5,
                "antialias": True,
                "reference": "Pillow Image.resize((w, h), Image.Resampling.BICUBIC, "
                "reducing_gap=None) on 8-bit RGB: separable, horizontal pass then "
                "vertical, each rounded and clamped to 0..255",
            },
            "center_crop": {
                "width": self.crop_size,
                "height": self.crop_size,
                "left": "floor((w - width) / 2)",
                "top": "floor((h - height) / 2)",
            },
            "scale": self.scale,
            "mean": list(self.mean),
            "std": list(self.std),
            "layout": "NCHW",
            "dtype": "float32",
            "input_name": INPUT_NAME,
            "output_name": OUTPUT_NAME,
            "output_l2_normalized": True,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "PreprocessSpec":
        if data.get("version") != SPEC_VERSION:
            raise ValueError(
                f"preprocess.json version {data.get('version')} is not {SPEC_VERSION}: "
                "re-export the model with this embedder version"
            )
        crop = data["center_crop"]
        if crop["width"] != crop["height"]:
            raise ValueError("only square centre crops are supported")
        return cls(
            resize_short_side=int(data["resize"]["short_side"]),
            crop_size=int(crop["width"]),
            mean=_triple(data["mean"]),
            std=_triple(data["std"]),
            scale=float(data["scale"]),
            background=(
                int(data["alpha_background"][0]),
                int(data["alpha_background"][1]),
                int(data["alpha_background"][2]),
            ),
            local=LocalSpec.from_json(data["local"]) if data.get("local") else None,
        )

    def draft_size(self, variants: list[Variant]) -> tuple[int, int]:
        smallest_crop = min(v.crop_fraction for v in variants)
        side = math.ceil(DRAFT_MARGIN * self.resize_short_side / smallest_crop)
        return side, side

    def decode(self, data: bytes, variants: list[Variant]) -> Image.Image:
        """Untrusted bytes -> 8-bit RGB, oriented; raises InvalidImage with the reason."""
        decoded = decode_image(
            data, background=self.background, draft_size=self.draft_size(variants)
        )
        return decoded.image

    def resize_and_crop(self, image: Image.Image) -> Image.Image:
        width, height = image.size
        short, long = min(width, height), max(width, height)
        new_long = int(long * self.resize_short_side / short)
        size = (
            (self.resize_short_side, new_long)
            if width <= height
            else (new_long, self.resize_short_side)
        )
        left = (size[0] - self.crop_size) // 2
        top = (size[1] - self.crop_size) // 2
        return resized_window(image, size, (left, top, left + self.crop_size, top + self.crop_size))

    def to_tensor(self, image: Image.Image) -> np.ndarray:
        """8-bit RGB crop -> float32 CHW."""
        pixels = np.asarray(image, dtype=np.float32) * np.float32(self.scale)
        mean = np.asarray(self.mean, dtype=np.float32)
        std = np.asarray(self.std, dtype=np.float32)
        normalised = (pixels - mean) / std
        return np.ascontiguousarray(normalised.transpose(2, 0, 1))

    def view(self, image: Image.Image, variant: Variant) -> np.ndarray:
        if variant.crop_fraction < 1.0:
            width, height = image.size
            keep_w = max(1, round(width * variant.crop_fraction))
            keep_h = max(1, round(height * variant.crop_fraction))
            left, top = (width - keep_w) // 2, (height - keep_h) // 2
            image = image.crop((left, top, left + keep_w, top + keep_h))
        tensor = self.to_tensor(self.resize_and_crop(image))
        if variant.mirror:
            tensor = np.ascontiguousarray(tensor[:, :, ::-1])
        return tensor

    def local_tensor(self, image: Image.Image, degrees: int = 0) -> np.ndarray:
        """Decoded photo -> (1, 3, H, W) input of the local graph, turned clockwise by
        `degrees` first."""
        if self.local is None:
            raise ValueError("this preprocessing has no local section")
        turned = rotate_clockwise(image, degrees)
        size = self.local.size(*turned.size)
        return self.to_tensor(resized(turned, size))[None]

    def tensors(self, data: bytes, variants: list[Variant]) -> np.ndarray:
        """Bytes -> (len(variants), 3, crop, crop) float32, one row per variant."""
        image = self.decode(data, variants)
        return np.stack([self.view(image, v) for v in variants])


def _triple(values: list[float]) -> tuple[float, float, float]:
    if len(values) != 3:
        raise ValueError("mean and std need one value per RGB channel")
    return float(values[0]), float(values[1]), float(values[2])
