"""Views of one image that each get their own vector.

"global" is the whole image. Extra views make retrieval robust to how a photo
was taken: "mirror" is the horizontal flip, "crop:F" a centre crop keeping the
fraction F of each side (0 < F < 1) before the usual resize and crop."""

from dataclasses import dataclass

from photosearch.common.errors import InvalidArgument

GLOBAL = "global"


@dataclass(frozen=True)
class Variant:
    name: str
    mirror: bool = False
    crop_fraction: float = 1.0


def parse_variant(name: str) -> Variant:
    if name == GLOBAL:
        return Variant(name)
    if name == "mirror":
        return Variant(name, mirror=True)
    if name.startswith("crop:"):
        try:
            fraction = float(name.removeprefix("crop:"))
        except ValueError:
            fraction = 0.0
        if 0.0 < fraction < 1.0:
            return Variant(name, crop_fraction=fraction)
    raise InvalidArgument(
        f"unknown variant {name!r}: use 'global', 'mirror' or 'crop:F' with 0 < F < 1"
    )


def parse_variants(names: list[str]) -> list[Variant]:
    """'global' first, then the extra views in the given order, without repeats."""
    ordered = [GLOBAL, *(n for n in dict.fromkeys(names) if n != GLOBAL)]
    return [parse_variant(n) for n in ordered]
