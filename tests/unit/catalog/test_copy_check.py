"""The pixel check: the copies PDQ's views miss (a photo turned by an odd angle and zoomed
with black corners, one re-encoded hard and brightened) are candidates and pass the check,
while different pictures and a flat picture do not; its features survive storage; a
check out of time counts what it left."""

import io

import numpy as np
import pytest
import skimage.data
from PIL import Image, ImageEnhance

from photosearch_catalog import copy_check, copy_features
from photosearch_catalog.copy_hash import DEFAULT_MATCH_DISTANCE, HASH_BYTES, distance, hash_picture
from tests.support.copies import turned_and_zoomed

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field")


def photo(name: str) -> Image.Image:
    return Image.fromarray(getattr(skimage.data, name)()).convert("RGB")


def jpeg(image: Image.Image, quality: int) -> Image.Image:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return Image.open(io.BytesIO(out.getvalue())).convert("RGB")


def closest(a, b) -> int:
    views = [a.views[i : i + HASH_BYTES] for i in range(0, len(a.views), HASH_BYTES)]
    back = [b.views[i : i + HASH_BYTES] for i in range(0, len(b.views), HASH_BYTES)]
    return min(
        min(distance(v, b.views[:HASH_BYTES]) for v in views),
        min(distance(v, a.views[:HASH_BYTES]) for v in back),
    )


def features(image: Image.Image):
    hashed = hash_picture(image)
    return hashed, copy_features.unpack(hashed.features)


def catalog(images: list[Image.Image]):
    hashed = [hash_picture(im) for im in images]
    canonical = np.stack([np.frombuffer(h.views[:HASH_BYTES], np.uint8) for h in hashed])
    feats = [copy_features.unpack(h.features) for h in hashed]
    return canonical, feats


def test_a_turned_and_zoomed_copy_is_a_candidate_and_passes_aligned() -> None:
    originals = [photo(n) for n in PHOTOS]
    copy = turned_and_zoomed(originals[1], 17, zoom=0.85)
    original_hash, original = features(originals[1])
    copy_hash, copied = features(copy)
    assert closest(original_hash, copy_hash) > DEFAULT_MATCH_DISTANCE  # PDQ misses it
    canonical, feats = catalog([*originals, copy])
    owners = np.arange(len(feats), dtype=np.int64)
    pairs = copy_check.candidates(canonical, np.stack([f.colour for f in feats]), owners)
    assert (1, len(feats) - 1) in pairs
    score, how = copy_check.similarity(copied, original)
    assert how == copy_check.ALIGNED and score >= copy_check.PIXEL_MATCH
    assert copy_check.as_is(copied, original) < copy_check.PIXEL_MATCH
    found, unchecked = copy_check.check(feats, pairs)
    assert unchecked == 0
    assert [(m.a, m.b) for m in found] == [(1, len(feats) - 1)]


def test_a_hard_reencoded_brighter_copy_passes_as_is() -> None:
    original = photo("chelsea")
    copy = jpeg(ImageEnhance.Brightness(original).enhance(1.4), 8)
    score, how = copy_check.similarity(features(copy)[1], features(original)[1])
    assert how == copy_check.AS_IS and score >= copy_check.PIXEL_MATCH


def test_different_pictures_and_a_flat_one_do_not_pass() -> None:
    flat = Image.new("RGB", (300, 200), (120, 120, 120))
    _, feats = catalog([photo(n) for n in PHOTOS] + [flat])
    assert len(feats[-1].descriptors) == 0
    for i in range(len(feats)):
        for j in range(i + 1, len(feats)):
            score, _ = copy_check.similarity(feats[i], feats[j], enough=np.inf)
            names = (*PHOTOS, "flat")
            assert score < copy_check.PIXEL_MATCH, (names[i], names[j])


def test_images_of_one_item_are_never_candidates() -> None:
    canonical, feats = catalog([photo("coffee"), jpeg(photo("coffee"), 30), photo("rocket")])
    owners = np.asarray([0, 0, 1], dtype=np.int64)
    pairs = copy_check.candidates(canonical, np.stack([f.colour for f in feats]), owners)
    assert pairs and (0, 1) not in pairs
    assert all(owners[i] != owners[j] for i, j in pairs)


def test_the_features_survive_storage() -> None:
    packed = hash_picture(photo("astronaut")).features
    f = copy_features.unpack(packed)
    assert 0 < len(f.points) <= copy_features.KEYPOINTS
    assert max(f.thumbnail.shape) == copy_features.THUMB_SIDE
    assert max(f.frame) == copy_features.FRAME_SIDE
    assert np.isclose(np.linalg.norm(f.colour), 1.0)
    again = copy_features.unpack(copy_features.pack(f))
    np.testing.assert_array_equal(again.points, f.points)
    np.testing.assert_array_equal(again.descriptors, f.descriptors)
    np.testing.assert_array_equal(again.thumbnail, f.thumbnail)
    np.testing.assert_allclose(again.colour, f.colour, atol=0.01)
    with pytest.raises(ValueError, match="wrong length"):
        copy_features.unpack(packed + b"x")


def test_a_check_out_of_time_counts_what_it_left() -> None:
    _, feats = catalog([photo("coffee"), photo("rocket"), photo("chelsea")])
    pairs = [(0, 1), (0, 2), (1, 2)]
    assert copy_check.check(feats, pairs, seconds=0.0) == ([], 3)
    assert copy_check.check(feats, pairs, seconds=30.0)[1] == 0
