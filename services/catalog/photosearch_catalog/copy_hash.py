"""Perceptual hashes that catch copies of a catalog image without any model: PDQ
(Meta's 256-bit hash, built to survive re-encoding, resizing, blur and colour changes).

PDQ compares two hashes of the same framing. A copy that was turned, mirrored or
cropped is another framing, so every image keeps its canonical hash plus the hashes
of its *views*: the seven other turns and mirrors (hashed from the pixels: PDQ's
own DCT-flip shortcut drifted past the match distance on some photos) and centre crops
down to 70 % of each side in 1 % steps (a 1 % crop moved PDQ past it too, so coarser steps
left gaps). A copy matches when its canonical hash lies within the match distance of
any view of the original, or the other way round. The same pass computes what the pixel
check needs for the copies PDQ misses (copy_features.py, copy_check.py). No database here."""

import numpy as np
import pdqhash
from PIL import Image

from photosearch.common.images import WHITE, decode_image
from photosearch_catalog import copy_features
from photosearch_catalog.domain import CopyHash

# Stored with each hash: a hash of another version is recomputed, never compared.
SCHEME_VERSION = 2  # 2: with the pixel check's features
HASH_BYTES = 32
# Meta's recommended match distance for PDQ (of 256 bits).
DEFAULT_MATCH_DISTANCE = 31
# PDQ filters every picture down to 64 x 64 before its DCT, so a 256-px copy (still 4x
# that) keeps what it needs: 2.2x cheaper than 512 px for 44 views, and bench/copies.py
# misses one near-duplicate more of 1,462 (docs/benchmarks/catalog.md).
HASH_SIDE = 256

_T = Image.Transpose
ORIENTATIONS: tuple[tuple[str, _T | None], ...] = (
    ("as is", None),
    ("turned 90", _T.ROTATE_90),
    ("turned 180", _T.ROTATE_180),
    ("turned 270", _T.ROTATE_270),
    ("mirrored", _T.FLIP_LEFT_RIGHT),
    ("flipped", _T.FLIP_TOP_BOTTOM),
    ("transposed", _T.TRANSPOSE),
    ("transversed", _T.TRANSVERSE),
)
CROP_STEP = 0.99
SMALLEST_CROP = 0.70
CROPS: tuple[float, ...] = tuple(
    CROP_STEP**k for k in range(1, 100) if CROP_STEP**k >= SMALLEST_CROP
)
# View names in storage order; view 0 is the canonical hash.
VIEW_NAMES: tuple[str, ...] = tuple(name for name, _ in ORIENTATIONS) + tuple(
    f"centre {round(100 * f)} %" for f in CROPS
)


def _pdq(image: Image.Image) -> tuple[bytes, int]:
    bits, quality = pdqhash.compute(np.asarray(image))
    return np.packbits(np.asarray(bits, dtype=bool)).tobytes(), int(quality)


def _centre_crop(image: Image.Image, fraction: float) -> Image.Image:
    w, h = image.size
    kw, kh = max(1, round(w * fraction)), max(1, round(h * fraction))
    left, top = (w - kw) // 2, (h - kh) // 2
    return image.crop((left, top, left + kw, top + kh))


def hash_picture(image: Image.Image) -> CopyHash:
    """The canonical hash and every view's hash of a decoded picture."""
    image = image.convert("RGB")
    image.thumbnail((HASH_SIDE, HASH_SIDE), Image.Resampling.BILINEAR)
    canonical, quality = _pdq(image)
    hashes = [canonical]
    hashes += [_pdq(image.transpose(turn))[0] for _, turn in ORIENTATIONS if turn is not None]
    hashes += [_pdq(_centre_crop(image, f))[0] for f in CROPS]
    features = copy_features.pack(copy_features.compute(image))
    return CopyHash(b"".join(hashes), quality, SCHEME_VERSION, features)


def hash_image(data: bytes, max_bytes: int, max_pixels: int) -> CopyHash:
    """Hash encoded image bytes (within the catalog's decoding limits)."""
    decoded = decode_image(
        data,
        max_bytes=max_bytes,
        max_pixels=max_pixels,
        background=WHITE,
        draft_size=(HASH_SIDE, HASH_SIDE),
    )
    return hash_picture(decoded.image)


def distance(a: bytes, b: bytes) -> int:
    """Bits that differ between two hashes."""
    return (int.from_bytes(a) ^ int.from_bytes(b)).bit_count()
