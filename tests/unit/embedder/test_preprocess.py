import io

import numpy as np
import pytest
from PIL import Image

from photosearch.common.errors import InvalidArgument
from photosearch.common.images import InvalidImage
from photosearch_embedder.models import PREPROCESS
from photosearch_embedder.preprocess import LocalSpec, PreprocessSpec, rotate_clockwise
from photosearch_embedder.variants import parse_variants
from tests.support.embedder_models import photo

SPEC = PREPROCESS["dinov2"]
GLOBAL = parse_variants([])


def encode(image: Image.Image, fmt: str = "PNG", **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


def test_spec_round_trips_through_its_json_document() -> None:
    document = SPEC.to_json()
    assert PreprocessSpec.from_json(document) == SPEC
    assert document["resize"]["filter"] == "bicubic" and document["resize"]["antialias"]
    assert document["center_crop"] == {
        "width": 224,
        "height": 224,
        "left": "floor((w - width) / 2)",
        "top": "floor((h - height) / 2)",
    }
    assert document["layout"] == "NCHW" and document["input_name"] == "pixel_values"


def test_a_document_of_another_version_is_refused() -> None:
    with pytest.raises(ValueError, match="re-export"):
        PreprocessSpec.from_json({**SPEC.to_json(), "version": 99})


@pytest.mark.parametrize(("size", "resized"), [((640, 480), (341, 256)), ((300, 900), (256, 768))])
def test_short_side_resize_floors_the_long_side(size, resized) -> None:
    image = Image.new("RGB", size, (10, 20, 30))
    cropped = SPEC.resize_and_crop(image)
    assert cropped.size == (224, 224)
    expected = image.resize(resized, Image.Resampling.BICUBIC, reducing_gap=None)
    left, top = (resized[0] - 224) // 2, (resized[1] - 224) // 2
    assert np.array_equal(
        np.asarray(cropped), np.asarray(expected.crop((left, top, left + 224, top + 224)))
    )


def test_pixels_are_scaled_and_normalised_per_channel_in_nchw() -> None:
    tensors = SPEC.tensors(encode(Image.new("RGB", (300, 260), (255, 0, 128))), GLOBAL)
    assert tensors.shape == (1, 3, 224, 224) and tensors.dtype == np.float32
    expected = [(1.0 - 0.485) / 0.229, (0.0 - 0.456) / 0.224, (128 / 255 - 0.406) / 0.225]
    for channel, value in enumerate(expected):
        assert np.allclose(tensors[0, channel], value, atol=1e-5)


def test_transparency_is_flattened_onto_white() -> None:
    clear = Image.new("RGBA", (256, 256), (0, 0, 0, 0))
    white = Image.new("RGB", (256, 256), (255, 255, 255))
    assert np.allclose(SPEC.tensors(encode(clear), GLOBAL), SPEC.tensors(encode(white), GLOBAL))


def test_exif_orientation_is_applied_before_resizing() -> None:
    upright = Image.new("RGB", (300, 400), (0, 0, 0))
    upright.paste((255, 255, 255), (0, 0, 300, 100))  # white band on top
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # as a camera stores it
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 clockwise to display
    from_camera = SPEC.tensors(encode(stored, "JPEG", exif=exif, quality=95), GLOBAL)
    reference = SPEC.tensors(encode(upright, "JPEG", quality=95), GLOBAL)
    assert np.abs(from_camera - reference).mean() < 0.05


def test_mirror_is_the_flipped_global_view_and_crops_zoom_in() -> None:
    variants = parse_variants(["mirror", "crop:0.5"])
    tensors = SPEC.tensors(photo("chelsea"), variants)
    assert [v.name for v in variants] == ["global", "mirror", "crop:0.5"]
    assert np.array_equal(tensors[1], tensors[0][:, :, ::-1])
    assert not np.allclose(tensors[2], tensors[0])


def test_large_jpegs_decoded_at_reduced_scale_match_a_full_decode() -> None:
    data = photo("astronaut", size=3000)
    fast = SPEC.tensors(data, GLOBAL)[0]
    image = Image.open(io.BytesIO(data)).convert("RGB")  # full-size decode
    full = SPEC.to_tensor(SPEC.resize_and_crop(image))
    assert np.corrcoef(fast.ravel(), full.ravel())[0, 1] > 0.995


@pytest.mark.parametrize("name", ["", "flip", "crop:1.5", "crop:x"])
def test_unknown_variants_are_refused_with_the_valid_choices(name: str) -> None:
    with pytest.raises(InvalidArgument, match="'global', 'mirror' or 'crop:F'"):
        parse_variants([name])


def test_bytes_that_are_not_an_image_say_why() -> None:
    with pytest.raises(InvalidImage, match="not a supported image"):
        SPEC.tensors(b"certainly not a photo", GLOBAL)
    with pytest.raises(InvalidImage, match="truncated or corrupt"):
        SPEC.tensors(photo("chelsea")[:3000], GLOBAL)


LOCAL = PREPROCESS["efficientnet-lite0"].with_local(LocalSpec(448, multiple=32, dim=64))


def test_the_local_section_round_trips_with_the_names_the_browser_reads() -> None:
    document = LOCAL.to_json()
    assert document["version"] == 1
    assert document["local"] == {
        "onnx": "local.onnx",
        "input_name": "pixel_values",
        "output_name": "local",
        "long_side": 448,
        "multiple": 32,
        "square": False,
        "dim": 64,
    }
    assert PreprocessSpec.from_json(document) == LOCAL
    square = LOCAL.with_local(LocalSpec(448, 14, 64, square=True))
    assert PreprocessSpec.from_json(square.to_json()) == square


def test_a_document_without_a_local_section_still_reads() -> None:
    document = LOCAL.to_json()
    del document["local"]
    spec = PreprocessSpec.from_json(document)
    assert spec.local is None and spec == PREPROCESS["efficientnet-lite0"]
    with pytest.raises(ValueError, match="no local section"):
        spec.local_tensor(Image.new("RGB", (64, 64)))


@pytest.mark.parametrize(
    ("size", "multiple", "square", "expected"),
    [
        ((448, 320), 32, False, (448, 320)),
        ((640, 480), 32, False, (448, 352)),  # 336 px = 10.5 multiples: rounds up
        ((451, 300), 32, False, (448, 288)),
        ((300, 900), 32, False, (160, 448)),
        ((4000, 100), 32, False, (448, 32)),  # never below one multiple
        ((451, 300), 14, False, (448, 294)),
        ((640, 480), 14, True, (448, 448)),
    ],
)
def test_local_size_keeps_the_long_side_and_rounds_the_short_one(
    size, multiple, square, expected
) -> None:
    local = LocalSpec(448, multiple, 64, square=square)
    assert local.size(*size) == expected
    tensor = LOCAL.with_local(local).local_tensor(Image.new("RGB", size, (255, 0, 0)))
    assert tensor.shape == (1, 3, expected[1], expected[0]) and tensor.dtype == np.float32


def test_local_input_is_the_whole_photo_resized_like_the_fingerprint() -> None:
    image = Image.open(io.BytesIO(photo("chelsea"))).convert("RGB")  # 451 x 300
    # The horizontal pass first, as the browser does (one Pillow call runs the vertical
    # pass first for this shape).
    across = image.resize((448, 300), Image.Resampling.BICUBIC, reducing_gap=None)
    expected = across.resize((448, 288), Image.Resampling.BICUBIC, reducing_gap=None)
    assert np.array_equal(LOCAL.local_tensor(image)[0], LOCAL.to_tensor(expected))


def test_rotations_turn_the_photo_clockwise() -> None:
    image = Image.new("RGB", (64, 32), (0, 0, 0))
    image.paste((255, 255, 255), (0, 0, 32, 32))  # the left half is white
    # Turned 90 degrees clockwise the left half is on top; 270: at the bottom.
    top_white = np.asarray(rotate_clockwise(image, 90))
    assert top_white.shape == (64, 32, 3) and top_white[:32].min() == 255
    assert top_white[32:].max() == 0
    bottom_white = np.asarray(rotate_clockwise(image, 270))
    assert bottom_white[32:].min() == 255 and bottom_white[:32].max() == 0
    assert np.asarray(rotate_clockwise(image, 180))[:, 32:].min() == 255
    assert rotate_clockwise(image, 0) is image
    turned = LOCAL.local_tensor(image, 90)
    assert turned.shape == (1, 3, 448, 224)
