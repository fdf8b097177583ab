"""Copy hashes: a copy (turned, mirrored, centre-cropped off the 1 % ladder, re-encoded,
recoloured) lies within PDQ's match distance of one of the original's views while other
pictures do not, and the multi-index search finds exactly what comparing every pair does."""

import io

import numpy as np
import pytest
import skimage.data
from PIL import Image, ImageEnhance, ImageOps

from photosearch_catalog.copy_hash import (
    DEFAULT_MATCH_DISTANCE,
    HASH_BYTES,
    VIEW_NAMES,
    distance,
    hash_picture,
)
from photosearch_catalog.copy_matching import MAX_DISTANCE, find_matches

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")


def photo(name: str) -> Image.Image:
    return Image.fromarray(getattr(skimage.data, name)())


def jpeg(image: Image.Image, quality: int) -> Image.Image:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return Image.open(io.BytesIO(out.getvalue()))


def centre(image: Image.Image, fraction: float) -> Image.Image:
    w, h = image.size
    kw, kh = round(w * fraction), round(h * fraction)
    return image.crop(((w - kw) // 2, (h - kh) // 2, (w + kw) // 2, (h + kh) // 2))


COPIES = {
    "turned 90": lambda im: im.rotate(90, expand=True),
    "turned 180": lambda im: im.rotate(180, expand=True),
    "mirrored": lambda im: im.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
    "centre 83 % (off the ladder)": lambda im: centre(im, 0.83),
    "centre 96 %": lambda im: centre(im, 0.955),
    "jpeg 20": lambda im: jpeg(im, 20),
    "grayscale": lambda im: ImageOps.grayscale(im).convert("RGB"),
    "brighter": lambda im: ImageEnhance.Brightness(im).enhance(1.3),
    "half size": lambda im: im.resize((im.width // 2, im.height // 2)),
}


def closest(original, copy) -> int:
    """The report's rule: a view of one against the other's canonical hash, both ways."""

    def views(h):
        return [h.views[i : i + HASH_BYTES] for i in range(0, len(h.views), HASH_BYTES)]

    return min(
        min(distance(v, copy.views[:HASH_BYTES]) for v in views(original)),
        min(distance(v, original.views[:HASH_BYTES]) for v in views(copy)),
    )


@pytest.mark.parametrize("name", PHOTOS)
@pytest.mark.parametrize("change", sorted(COPIES))
def test_a_copy_lies_within_the_match_distance(name: str, change: str) -> None:
    original = photo(name)
    assert closest(hash_picture(original), hash_picture(COPIES[change](original))) <= (
        DEFAULT_MATCH_DISTANCE
    )


def test_different_pictures_stay_far_apart() -> None:
    hashes = [hash_picture(photo(n)) for n in PHOTOS]
    for i in range(len(hashes)):
        for j in range(i + 1, len(hashes)):
            assert closest(hashes[i], hashes[j]) > 2 * DEFAULT_MATCH_DISTANCE


def test_every_view_is_stored_and_a_flat_picture_is_low_quality() -> None:
    hashed = hash_picture(photo("coffee"))
    assert len(hashed.views) == len(VIEW_NAMES) * HASH_BYTES
    assert hashed.quality >= 50
    assert hash_picture(Image.new("RGB", (300, 200), (120, 120, 120))).quality < 50


def brute_force(views, owners, max_distance):
    bits = np.unpackbits(views, axis=2).astype(np.int16)
    canonical = bits[:, 0]
    best = {}
    for a in range(len(views)):
        d = np.abs(bits[a][:, None, :] - canonical[None, :, :]).sum(2)  # views x images
        low, view = d.min(0), d.argmin(0)
        for b in np.nonzero(low <= max_distance)[0].tolist():
            if owners[a] != owners[b]:
                key = (min(a, b), max(a, b))
                found = (int(low[b]), int(view[b]), a, b)
                best[key] = min(best.get(key, found), found)
    return best


@pytest.mark.parametrize("max_distance", [0, 15, 31, 40, MAX_DISTANCE])
def test_the_index_finds_exactly_what_every_pair_would(max_distance: int) -> None:
    rng = np.random.default_rng(max_distance)
    n, per_image = 300, 6
    views = rng.integers(0, 256, (n, per_image, HASH_BYTES), dtype=np.uint8)
    owners = np.arange(n, dtype=np.int64) // 3  # three images per item
    for k in range(120):  # plant copies at every distance up to 59 bits
        a, b = k, 150 + k
        bits = np.unpackbits(views[a, k % per_image])
        bits[rng.choice(256, k % 60, replace=False)] ^= 1
        views[b, 0] = np.packbits(bits)
    found = find_matches(views, owners, max_distance, limit=10**6)
    expected = brute_force(views, owners, max_distance)
    assert {(min(m.a, m.b), max(m.a, m.b)): (m.distance, m.view, m.a, m.b) for m in found} == (
        expected
    )
    assert [m.distance for m in found] == sorted(m.distance for m in found)
    assert len(expected) >= max_distance  # the planted pairs are there to be found
    assert len(find_matches(views, owners, max_distance, limit=5)) == min(5, len(expected))


def test_a_distance_the_index_cannot_guarantee_is_refused() -> None:
    views = np.zeros((2, 1, HASH_BYTES), dtype=np.uint8)
    with pytest.raises(ValueError, match="between 0 and 47"):
        find_matches(views, np.arange(2), MAX_DISTANCE + 1, 10)
