"""Image bytes on their way in (validation) and out (thumbnails). No database here."""

import asyncio
import hashlib
import io
from collections import OrderedDict
from dataclasses import dataclass

from PIL import Image as PILImage

from photosearch.common.errors import InvalidArgument
from photosearch.common.images import decode_image
from photosearch_catalog.domain import ImageRole, NewImage

CONTENT_TYPES = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "GIF": "image/gif",
    "HEIF": "image/heic",
}
_MAX_FILENAME = 255
_VALIDATION_DRAFT = (64, 64)  # JPEGs decode at 1/8 scale: every byte is still checked


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def content_type(image_format: str) -> str:
    return CONTENT_TYPES.get(image_format, "application/octet-stream")


@dataclass(frozen=True)
class ImageLimits:
    max_bytes: int
    max_pixels: int
    max_thumbnail_size: int


def _validate(
    data: bytes, sha: str, role: ImageRole, filename: str, limits: ImageLimits
) -> NewImage:
    decoded = decode_image(
        data,
        max_bytes=limits.max_bytes,
        max_pixels=limits.max_pixels,
        draft_size=_VALIDATION_DRAFT,
    )
    return NewImage(
        data=data,
        sha256=sha,
        role=role,
        width=decoded.width,
        height=decoded.height,
        format=decoded.format,
        filename=filename[-_MAX_FILENAME:],
    )


async def validate_image(
    data: bytes, role: ImageRole, filename: str, limits: ImageLimits, sha: str | None = None
) -> NewImage:
    """Decode fully (off the event loop) or raise InvalidImage saying what is wrong.
    The bytes themselves are kept untouched."""
    return await asyncio.to_thread(_validate, data, sha or sha256_hex(data), role, filename, limits)


def _thumbnail(data: bytes, size: int, limits: ImageLimits) -> bytes:
    decoded = decode_image(
        data, max_bytes=limits.max_bytes, max_pixels=limits.max_pixels, draft_size=(size, size)
    )
    image = decoded.image
    image.thumbnail((size, size), PILImage.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85, optimize=True)
    return out.getvalue()


class ThumbnailCache:
    """Thumbnails made on demand, kept in memory up to a byte budget (least recently used
    out first). Per replica; cheap to rebuild, so nothing persistent."""

    def __init__(self, limits: ImageLimits, budget_bytes: int) -> None:
        self._limits = limits
        self._budget = budget_bytes
        self._used = 0
        self._entries: OrderedDict[tuple[str, int], bytes] = OrderedDict()

    def check_size(self, size: int) -> None:
        if not 16 <= size <= self._limits.max_thumbnail_size:
            raise InvalidArgument(
                f"thumbnail_size must be 0 (the original) or between 16 and "
                f"{self._limits.max_thumbnail_size}; got {size}"
            )

    async def get(self, image_id: str, size: int, original: bytes) -> bytes:
        key = (image_id, size)
        cached = self._entries.get(key)
        if cached is not None:
            self._entries.move_to_end(key)
            return cached
        thumbnail = await asyncio.to_thread(_thumbnail, original, size, self._limits)
        self._remember(key, thumbnail)
        return thumbnail

    def forget(self, image_ids: list[str]) -> None:
        doomed = set(image_ids)
        for key in [k for k in self._entries if k[0] in doomed]:
            self._used -= len(self._entries.pop(key))

    def _remember(self, key: tuple[str, int], thumbnail: bytes) -> None:
        if len(thumbnail) > self._budget or key in self._entries:
            return
        self._entries[key] = thumbnail
        self._used += len(thumbnail)
        while self._used > self._budget:
            _, evicted = self._entries.popitem(last=False)
            self._used -= len(evicted)
