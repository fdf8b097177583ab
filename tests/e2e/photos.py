"""Varied photo files for the browser tests, made from the real photos in
../shared/datasets: sizes, EXIF orientations, alpha, greyscale, WebP, a 12 MP JPEG."""

import io
from pathlib import Path

import numpy as np
from PIL import Image

DATASETS = Path(__file__).resolve().parents[3] / "shared" / "datasets"
DVD = DATASETS / "smvs_dvd_covers"
COIL = DATASETS / "coil100" / "images"
LEGO = DATASETS / "lego_minifigs_kaggle_subset" / "images"
ORIENTATION = 0x0112


def dvd_reference(number: int) -> Path:
    return DVD / "reference" / f"{number:03d}.jpg"


def _exif_rotated(source: Image.Image, orientation: int) -> bytes:
    """Pixels stored turned, with the EXIF tag that turns them back upright."""
    undo = {
        3: Image.Transpose.ROTATE_180,
        6: Image.Transpose.ROTATE_90,
        8: Image.Transpose.ROTATE_270,
    }[orientation]
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    out = io.BytesIO()
    source.transpose(undo).save(out, "JPEG", quality=92, exif=exif.tobytes())
    return out.getvalue()


def _with_alpha(source: Image.Image) -> Image.Image:
    rgba = source.convert("RGBA")
    w, h = rgba.size
    y, x = np.mgrid[0:h, 0:w]
    inside = ((x - w / 2) ** 2 + (y - h / 2) ** 2) < (min(w, h) * 0.45) ** 2
    alpha = np.where(inside, 255, (x * 255 // max(1, w - 1)) % 256).astype(np.uint8)
    rgba.putalpha(Image.fromarray(alpha))
    return rgba


def varied_photos(folder: Path) -> list[Path]:
    """At least 10 files that exercise every step of the shared preprocessing."""
    folder.mkdir(parents=True, exist_ok=True)
    cover = Image.open(dvd_reference(3)).convert("RGB")
    lego = sorted(LEGO.rglob("*.jpg"))[0]
    phone = sorted((DVD / "query").rglob("*.jpg"))[0]
    made: dict[str, bytes] = {}
    for orientation in (3, 6, 8):
        made[f"exif_orientation_{orientation}.jpg"] = _exif_rotated(cover, orientation)
    buffers = {
        "alpha.png": (_with_alpha(cover), "PNG", {}),
        "greyscale.jpg": (cover.convert("L"), "JPEG", {"quality": 90}),
        "cover.webp": (cover, "WEBP", {"quality": 90}),
        "panorama.png": (cover.resize((1200, 200)), "PNG", {}),
        "large_12mp.jpg": (
            cover.resize((4000, 3000), Image.Resampling.BICUBIC),
            "JPEG",
            {"quality": 90},
        ),
        "tiny.png": (cover.resize((40, 30)), "PNG", {}),
    }
    for name, (image, fmt, options) in buffers.items():
        out = io.BytesIO()
        image.save(out, fmt, **options)
        made[name] = out.getvalue()
    paths = [folder / name for name in made]
    for path in paths:
        path.write_bytes(made[path.name])
    # Real photos as they are: a catalog JPEG, a phone photo, a small PNG, a portrait JPEG.
    return [dvd_reference(1), phone, COIL / "obj002__000.png", lego, *paths]
