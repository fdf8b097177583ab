"""Safe decoding of untrusted image bytes, shared by every service that takes a photo.

Rejects what cannot be a photo we handle (empty, too many bytes or pixels,
decompression bombs, unknown formats, truncated data) with an InvalidArgument
that says what was wrong, and normalises the rest to 8-bit RGB: EXIF orientation
applied, first frame of animations, CMYK / 16-bit / palette / alpha handled."""

import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from photosearch.common.errors import InvalidArgument

try:  # HEIC/HEIF support, where the optional pillow-heif is installed
    import pillow_heif

    pillow_heif.register_heif_opener()
except ImportError:  # pragma: no cover - every image-handling service installs it
    pass

# Pillow format names we accept (MPO is a multi-picture JPEG from phone cameras).
SUPPORTED_FORMATS = {"JPEG", "MPO", "PNG", "WEBP", "GIF", "HEIF"}
DEFAULT_MAX_BYTES = 25 * 1024 * 1024
DEFAULT_MAX_PIXELS = 50_000_000
WHITE = (255, 255, 255)
_ORIENTATION_TAG = 0x0112
_TRANSPOSING = {5, 6, 7, 8}  # EXIF orientations that swap width and height


class InvalidImage(InvalidArgument):
    """The bytes are not an image we can use; the message says why."""


@dataclass(frozen=True)
class DecodedImage:
    image: Image.Image  # 8-bit RGB, orientation applied
    format: str  # "JPEG", "PNG", ...
    width: int  # of the original (not of a reduced draft decode), after orientation
    height: int


def _check_header(data: bytes, max_bytes: int, max_pixels: int) -> Image.Image:
    if not data:
        raise InvalidImage("the image is empty (0 bytes)")
    if len(data) > max_bytes:
        raise InvalidImage(
            f"the image is {len(data) / 2**20:.1f} MB; the limit is {max_bytes / 2**20:.0f} MB"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InvalidImage(
            f"the image has far too many pixels; the limit is {max_pixels / 1e6:.0f} MP"
        ) from None
    except UnidentifiedImageError:
        raise InvalidImage("not a supported image: use JPEG, PNG, WebP, GIF or HEIC") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise InvalidImage(f"the image header is damaged ({exc})") from None
    if image.format not in SUPPORTED_FORMATS:
        raise InvalidImage(
            f"unsupported image format {image.format}: use JPEG, PNG, WebP, GIF or HEIC"
        )
    width, height = image.size
    if width <= 0 or height <= 0:
        raise InvalidImage("the image has no pixels")
    if width * height > max_pixels:
        raise InvalidImage(
            f"the image is {width}x{height} ({width * height / 1e6:.0f} MP); "
            f"the limit is {max_pixels / 1e6:.0f} MP"
        )
    return image


def to_rgb(image: Image.Image, background: tuple[int, int, int] = WHITE) -> Image.Image:
    """8-bit RGB; transparency is flattened onto `background`."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16/32-bit greyscale: scale to 8 bits instead of clipping at 255.
        image = image.point(lambda v: v / 256).convert("L")
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "RGBa"):
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, background)
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    if image.mode != "RGB":
        image = image.convert("RGB")
    return image


def decode_image(
    data: bytes,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    background: tuple[int, int, int] = WHITE,
    draft_size: tuple[int, int] | None = None,
) -> DecodedImage:
    """Decode and normalise. `draft_size` lets JPEG decode at a reduced scale (still at
    least that size), which is much faster for photos that will be downscaled anyway."""
    image = _check_header(data, max_bytes, max_pixels)
    image_format = "JPEG" if image.format == "MPO" else str(image.format)
    width, height = image.size
    try:
        if image.getexif().get(_ORIENTATION_TAG, 1) in _TRANSPOSING:
            width, height = height, width
        if draft_size and image_format == "JPEG":
            image.draft("RGB", draft_size)
        image.seek(0)  # first frame of an animation
        image.load()
        oriented = ImageOps.exif_transpose(image)
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise InvalidImage(f"the image data is truncated or corrupt ({exc})") from None
    return DecodedImage(to_rgb(oriented, background), image_format, width, height)
