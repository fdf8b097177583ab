import io
import struct
import zlib

import pytest
from PIL import Image

from photosearch.common.images import InvalidImage, decode_image


def encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims a size without carrying the pixels (a decompression bomb's header)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "GIF"])
def test_common_formats_decode_to_rgb(fmt: str) -> None:
    decoded = decode_image(encode(Image.new("RGB", (40, 30), (200, 10, 10)), fmt))
    assert decoded.image.mode == "RGB"
    assert (decoded.width, decoded.height) == (40, 30)
    assert decoded.format == fmt


def test_heic_decodes() -> None:
    decoded = decode_image(encode(Image.new("RGB", (32, 32), (0, 128, 0)), "HEIF"))
    assert decoded.format == "HEIF"
    assert decoded.image.mode == "RGB"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'></svg>", "not a supported image"),
        (b"<html><body>hello</body></html>", "not a supported image"),
        (bytes(range(256)) * 20, "not a supported image"),
    ],
)
def test_non_images_are_refused_with_a_reason(data: bytes, message: str) -> None:
    with pytest.raises(InvalidImage, match=message):
        decode_image(data)


def test_truncated_jpeg_is_refused() -> None:
    data = encode(Image.effect_noise((256, 256), 50).convert("RGB"), "JPEG")
    with pytest.raises(InvalidImage, match="truncated or corrupt"):
        decode_image(data[: len(data) // 2])


def test_decompression_bomb_is_refused_before_decoding() -> None:
    with pytest.raises(InvalidImage, match="limit is 50 MP"):
        decode_image(png_header_only(100_000, 100_000))


def test_byte_limit() -> None:
    with pytest.raises(InvalidImage, match="limit is 0 MB"):
        decode_image(encode(Image.new("RGB", (8, 8)), "PNG"), max_bytes=10)


def test_unsupported_format_is_named() -> None:
    with pytest.raises(InvalidImage, match="unsupported image format BMP"):
        decode_image(encode(Image.new("RGB", (8, 8)), "BMP"))


def test_alpha_is_flattened_onto_the_background() -> None:
    transparent = Image.new("RGBA", (4, 4), (0, 0, 0, 0))
    decoded = decode_image(encode(transparent, "PNG"), background=(10, 20, 30))
    assert decoded.image.getpixel((0, 0)) == (10, 20, 30)


def test_palette_with_transparency_is_flattened() -> None:
    image = Image.new("P", (4, 4), 0)
    image.putpalette([255, 0, 0] * 256)
    data = encode(image, "PNG", transparency=0)
    assert decode_image(data).image.getpixel((0, 0)) == (255, 255, 255)


def test_sixteen_bit_greyscale_is_scaled_not_clipped() -> None:
    image = Image.new("I;16", (4, 4), 32768)
    value = decode_image(encode(image, "PNG")).image.getpixel((0, 0))
    assert value == (128, 128, 128)


def test_cmyk_jpeg_becomes_rgb() -> None:
    decoded = decode_image(encode(Image.new("CMYK", (8, 8), (0, 255, 255, 0)), "JPEG"))
    red, green, blue = decoded.image.getpixel((4, 4))
    assert red > 200 and green < 60 and blue < 60


def test_animated_gif_takes_the_first_frame() -> None:
    frames = [Image.new("RGB", (8, 8), c) for c in [(255, 0, 0), (0, 0, 255)]]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    red, _, blue = decode_image(data).image.getpixel((4, 4))
    assert red > 200 and blue < 50


def test_exif_orientation_is_applied_and_sizes_follow_it() -> None:
    image = Image.new("RGB", (60, 20), (0, 0, 0))
    image.paste((255, 255, 255), (0, 0, 10, 20))  # a white band on the left
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90° clockwise for display
    decoded = decode_image(encode(image, "JPEG", exif=exif.tobytes()))
    assert (decoded.width, decoded.height) == (20, 60)
    assert decoded.image.size == (20, 60)
    assert sum(decoded.image.getpixel((10, 5))) > 600  # the band is now on top


def test_draft_decodes_large_jpegs_at_reduced_size_but_reports_the_original() -> None:
    data = encode(Image.new("RGB", (2000, 1600), (50, 60, 70)), "JPEG")
    decoded = decode_image(data, draft_size=(224, 224))
    assert (decoded.width, decoded.height) == (2000, 1600)
    assert 224 <= min(decoded.image.size) < 1600
