"""Photo preparation: orientation applied, downscaled, JPEG without metadata, within budget."""

import io

import numpy as np
import pytest
from PIL import Image

from photosearch.common.errors import InvalidArgument
from photosearch_fallback.photo import prepare_photo

LIMITS = {"max_bytes": 25_000_000, "max_pixels": 50_000_000}


def encode(image: Image.Image, fmt: str = "JPEG", **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def prepare(data: bytes, max_side: int = 1600, budget: int = 4_000_000, quality: int = 88):
    return prepare_photo(
        data, max_side=max_side, max_upload_bytes=budget, quality=quality, **LIMITS
    )


def test_exif_orientation_is_applied_and_metadata_not_uploaded() -> None:
    # A landscape sensor image tagged "rotate 90° clockwise" (orientation 6), left half red.
    image = Image.new("RGB", (400, 200), "blue")
    image.paste((255, 0, 0), (0, 0, 200, 200))
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010F] = "ExampleCam"  # maker: must not leave the service
    photo = prepare(encode(image, exif=exif.tobytes()))
    assert (photo.width, photo.height) == (200, 400)
    assert (photo.source_width, photo.source_height) == (200, 400)
    uploaded = Image.open(io.BytesIO(photo.jpeg))
    assert uploaded.format == "JPEG"
    assert not uploaded.getexif()
    # After the rotation, the red half is on top.
    top, bottom = uploaded.getpixel((100, 50)), uploaded.getpixel((100, 350))
    assert isinstance(top, tuple) and isinstance(bottom, tuple)
    assert top[0] > 200 and top[2] < 60, top
    assert bottom[2] > 200 and bottom[0] < 60, bottom


def test_a_large_photo_is_downscaled_to_the_longest_side() -> None:
    data = encode(Image.new("RGB", (4000, 3000), "green"), quality=95)
    photo = prepare(data, max_side=1200)
    assert (photo.width, photo.height) == (1200, 900)
    assert photo.source_bytes == len(data)
    assert Image.open(io.BytesIO(photo.jpeg)).size == (1200, 900)


def test_png_with_alpha_becomes_a_jpeg() -> None:
    photo = prepare(encode(Image.new("RGBA", (300, 300), (0, 0, 0, 0)), "PNG"))
    assert photo.source_format == "PNG"
    assert Image.open(io.BytesIO(photo.jpeg)).getpixel((10, 10)) == (255, 255, 255)


def test_a_noisy_photo_is_shrunk_until_it_fits_the_upload_budget() -> None:
    noise = np.random.default_rng(7).integers(0, 256, (1200, 1200, 3), dtype=np.uint8)
    data = encode(Image.fromarray(noise), quality=95)
    budget = 150_000
    photo = prepare(data, max_side=1200, budget=budget)
    assert len(photo.jpeg) <= budget
    assert photo.width < 1200


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"this is not an image", "not a supported image"),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 40, "image"),
    ],
)
def test_what_is_not_a_photo_is_refused_with_a_reason(data: bytes, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        prepare(data)


def test_too_many_bytes_is_refused_before_decoding() -> None:
    with pytest.raises(InvalidArgument, match="limit"):
        prepare_photo(
            b"\x00" * 2_000,
            max_side=1600,
            max_upload_bytes=4_000_000,
            quality=88,
            max_bytes=1_000,
            max_pixels=50_000_000,
        )


def test_a_large_rotated_photo_keeps_its_aspect_and_enough_pixels() -> None:
    # Stored landscape 4000x3000, shown portrait (orientation 8): uploaded 1200x1600.
    exif = Image.Exif()
    exif[0x0112] = 8
    data = encode(Image.new("RGB", (4000, 3000), "gray"), exif=exif.tobytes())
    photo = prepare(data, max_side=1600)
    assert (photo.source_width, photo.source_height) == (3000, 4000)
    assert (photo.width, photo.height) == (1200, 1600)
