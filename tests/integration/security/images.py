"""Hostile and unusual image files for the paths that take a photo. `REFUSED`: what no
service may accept (each with the words its refusal must contain); `ACCEPTED`: real
photos in unusual encodings that every service must take and normalise."""

import io
import random
import struct
import zlib
from collections.abc import Callable

import numpy as np
import pillow_heif
from PIL import Image

pillow_heif.register_heif_opener()


def _photo(size: tuple[int, int] = (320, 240), seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0 : size[1], 0 : size[0]]
    base = np.stack([x * 255 // size[0], y * 255 // size[1], (x + y) % 256], axis=-1)
    noise = rng.integers(0, 40, size=(size[1], size[0], 3))
    return Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8), "RGB")


def _save(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png(width: int, height: int, idat: bytes, colour_type: int = 0) -> bytes:
    header = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", idat)
        + _chunk(b"IEND", b"")
    )


def png_claiming(width: int, height: int) -> bytes:
    """A PNG header promising width x height pixels, followed by almost nothing."""
    return _png(width, height, zlib.compress(b"\0" * 4096))


def decompression_bomb(side: int = 10_000) -> bytes:
    """A complete, valid greyscale PNG of side x side black pixels: ~400 kB that would
    decode to `side`^2 bytes (100 MB at the default)."""
    row = b"\0" * (side + 1)  # filter byte + pixels
    packer = zlib.compressobj(1)
    parts = [packer.compress(row * 100) for _ in range(side // 100)]
    parts.append(packer.flush())
    return _png(side, side, b"".join(parts))


def jpeg_claiming(width: int, height: int) -> bytes:
    """A real JPEG whose frame header is rewritten to claim width x height."""
    data = bytearray(_save(_photo((64, 48)), "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def gif_claiming(width: int, height: int) -> bytes:
    data = bytearray(_save(_photo((32, 32)).convert("P"), "GIF"))
    data[6:10] = struct.pack("<HH", width, height)  # the logical screen
    return bytes(data)


def _noisy_jpeg() -> bytes:
    return _save(_photo((400, 300), seed=3), "JPEG", quality=90)


def _cmyk_jpeg() -> bytes:
    return _save(_photo(seed=4).convert("CMYK"), "JPEG", quality=90)


def _sixteen_bit_png() -> bytes:
    grey = np.asarray(_photo(seed=5).convert("L"), dtype=np.uint16) * 257
    image = Image.fromarray(grey)
    assert image.mode.startswith("I;16"), image.mode
    return _save(image, "PNG")


def _palette_with_transparency() -> bytes:
    image = _photo(seed=6).convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    return _save(image, "PNG", transparency=0)


def _animated(fmt: str) -> bytes:
    frames = [_photo(seed=7 + n) for n in range(3)]
    if fmt == "GIF":
        frames = [f.convert("P") for f in frames]
    return _save(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)


def _rgba_png() -> bytes:
    image = _photo(seed=10).convert("RGBA")
    image.putalpha(Image.linear_gradient("L").resize(image.size))
    return _save(image, "PNG")


def _exif_rotated_jpeg() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees to display
    return _save(_photo(seed=11), "JPEG", exif=exif.tobytes())


def _random_bytes() -> bytes:
    return random.Random(12).randbytes(50_000)


REFUSED: dict[str, tuple[Callable[[], bytes], str]] = {
    "zero-bytes": (lambda: b"", "empty"),
    "truncated-jpeg": (lambda: _noisy_jpeg()[: len(_noisy_jpeg()) * 2 // 3], "truncated"),
    "cut-in-the-header": (lambda: _noisy_jpeg()[:300], "damaged"),
    "random-bytes": (_random_bytes, "not a supported image"),
    "png-claiming-900-megapixels": (lambda: png_claiming(30_000, 30_000), "MP"),
    "jpeg-claiming-65000x65000": (lambda: jpeg_claiming(65_000, 65_000), "MP"),
    "gif-claiming-60000x60000": (lambda: gif_claiming(60_000, 60_000), "MP"),
    "decompression-bomb": (decompression_bomb, "MP"),
    "html-named-jpg": (
        lambda: b"<!DOCTYPE html><html><body><script>alert(1)</script></body></html>",
        "not a supported image",
    ),
    "svg-named-png": (
        lambda: (
            b"<svg xmlns='http://www.w3.org/2000/svg' width='4000' height='4000'>"
            b"<script>alert(1)</script></svg>"
        ),
        "not a supported image",
    ),
    "pdf": (lambda: b"%PDF-1.7\n" + bytes(range(256)) * 8, "not a supported image"),
    "tiff": (lambda: _save(_photo(seed=13), "TIFF"), "unsupported image format TIFF"),
    "bmp": (lambda: _save(_photo(seed=14), "BMP"), "unsupported image format BMP"),
}

ACCEPTED: dict[str, Callable[[], bytes]] = {
    "cmyk-jpeg": _cmyk_jpeg,
    "16-bit-png": _sixteen_bit_png,
    "palette-with-transparency": _palette_with_transparency,
    "animated-gif": lambda: _animated("GIF"),
    "animated-webp": lambda: _animated("WEBP"),
    "heic": lambda: _save(_photo(seed=15), "HEIF", quality=80),
    "greyscale-jpeg": lambda: _save(_photo(seed=16).convert("L"), "JPEG"),
    "rgba-png": _rgba_png,
    "exif-rotated-jpeg": _exif_rotated_jpeg,
    "tall-and-thin": lambda: _save(_photo((40, 8000), seed=17), "PNG"),
}
