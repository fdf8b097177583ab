"""The robustness suite: transformed copies of catalog photos, generated on the fly.

Each transform is a pure function of the photo (and, for the pasted one, of a busy
background from scikit-image's bundled photos), so every run makes the same copies.
`NEAR_DUPLICATE` lists the transforms after which the copy is still the same picture:
the duplicate report must flag every one of those."""

import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter, ImageOps

from tools.quality.datasets import Dataset, Photo

Transform = Callable[[Image.Image, int], Image.Image]
BACKGROUNDS = ("coffee", "astronaut", "rocket", "chelsea", "hubble_deep_field")


def _crop(fraction: float) -> Transform:
    def crop(image: Image.Image, _: int) -> Image.Image:
        w, h = image.size
        kw, kh = max(1, round(w * fraction)), max(1, round(h * fraction))
        left, top = (w - kw) // 2, (h - kh) // 2
        return image.crop((left, top, left + kw, top + kh))

    return crop


def _brightness(factor: float) -> Transform:
    return lambda image, _: ImageEnhance.Brightness(image).enhance(factor)


def _contrast(image: Image.Image, _: int) -> Image.Image:
    return ImageEnhance.Contrast(image).enhance(1.6)


def _mirror(image: Image.Image, _: int) -> Image.Image:
    return image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)


def _rotate(degrees: int) -> Transform:
    return lambda image, _: image.rotate(degrees, expand=True)


def _blur(image: Image.Image, _: int) -> Image.Image:
    radius = max(1.0, max(image.size) / 200)
    return image.filter(ImageFilter.GaussianBlur(radius))


def _grayscale(image: Image.Image, _: int) -> Image.Image:
    return ImageOps.grayscale(image).convert("RGB")


def _tiny(image: Image.Image, _: int) -> Image.Image:
    w, h = image.size
    scale = 64 / max(w, h)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return image.resize(size, Image.Resampling.LANCZOS)


def _strip_cut(image: Image.Image, _: int) -> Image.Image:
    """A 1:6 vertical slice through the middle, full height."""
    w, h = image.size
    keep = max(1, round(h / 6))
    if keep >= w:
        return image
    left = (w - keep) // 2
    return image.crop((left, 0, left + keep, h))


def _strip_page(image: Image.Image, _: int) -> Image.Image:
    """The photo as a panel on a tall 1:6 page (white above and below)."""
    w, h = image.size
    page = Image.new("RGB", (w, max(h, 6 * w)), (255, 255, 255))
    page.paste(image, (0, (page.size[1] - h) // 2))
    return page


def busy_background(index: int) -> Image.Image:
    import skimage.data

    name = BACKGROUNDS[index % len(BACKGROUNDS)]
    return Image.fromarray(getattr(skimage.data, name)()).convert("RGB")


def _pasted(image: Image.Image, index: int) -> Image.Image:
    """The photo at a third of the background's short side, off-centre."""
    background = busy_background(index).resize((640, 480), Image.Resampling.BICUBIC)
    side = 160
    w, h = image.size
    scale = side / max(w, h)
    small = image.resize(
        (max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.BICUBIC
    )
    rng = np.random.default_rng(index)
    x = int(rng.integers(0, 640 - small.size[0] + 1))
    y = int(rng.integers(0, 480 - small.size[1] + 1))
    background.paste(small, (x, y))
    return background


TRANSFORMS: dict[str, Transform] = {
    "crop90": _crop(0.9),
    "crop75": _crop(0.75),
    "crop50": _crop(0.5),
    "bright+40": _brightness(1.4),
    "bright-40": _brightness(0.6),
    "contrast": _contrast,
    "mirror": _mirror,
    "rot90": _rotate(90),
    "rot180": _rotate(180),
    "jpeg20": lambda image, _: image,  # the encoding does it (see `encode`)
    "blur": _blur,
    "grayscale": _grayscale,
    "tiny64": _tiny,
    "strip_cut": _strip_cut,
    "strip_page": _strip_page,
    "pasted": _pasted,
}
JPEG_QUALITY = {"jpeg20": 20}
# Still the same picture: a duplicate report must pair the copy with its source.
NEAR_DUPLICATE = (
    "crop90", "crop75", "bright+40", "bright-40", "contrast", "mirror", "rot90", "rot180",
    "jpeg20", "blur", "grayscale", "tiny64",
)  # fmt: skip


@dataclass(frozen=True)
class Copy:
    transform: str
    source: Photo
    dataset: str
    data: bytes  # encoded JPEG

    @property
    def key(self) -> str:
        item = self.source.item.replace("/", "_")
        return f"{self.transform}/{self.dataset}/{item}/{self.source.path.name}"


def encode(image: Image.Image, transform: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=JPEG_QUALITY.get(transform, 95))
    return buffer.getvalue()


def make_copies(
    sources: list[tuple[str, Photo]], transforms: list[str] | None = None
) -> list[Copy]:
    """Every transform of every (dataset, catalog photo), in a fixed order."""
    from photosearch.common.images import WHITE, decode_image

    copies = []
    names = transforms or list(TRANSFORMS)
    for index, (dataset, photo) in enumerate(sources):
        image = decode_image(photo.path.read_bytes(), background=WHITE).image
        for name in names:
            copies.append(Copy(name, photo, dataset, encode(TRANSFORMS[name](image, index), name)))
    return copies


def qualified(dataset: str, photo: Photo) -> Photo:
    """The photo with its item named "dataset/item", unique across datasets."""
    return Photo(photo.path, f"{dataset}/{photo.item}", photo.view, photo.role)


def write_suite(copies: list[Copy], folder: Path) -> Dataset:
    """The copies as files (results folder, not the repository) and a dataset whose
    catalog is every source dataset's catalog and whose queries are the copies."""
    folder.mkdir(parents=True, exist_ok=True)
    catalog: dict[str, Photo] = {}
    queries = []
    for copy in copies:
        source = qualified(copy.dataset, copy.source)
        catalog[source.key] = source
        path = folder / (copy.key.replace("/", "__") + ".jpg")
        if not path.is_file() or path.read_bytes() != copy.data:
            path.write_bytes(copy.data)
        queries.append(Photo(path, source.item, copy.transform, "query"))
    return Dataset("robustness", folder, list(catalog.values()), queries)
