"""Photos uploaded as multipart form files."""

from fastapi import UploadFile

from photosearch_gateway.errors import ApiError


async def read_photo(photo: UploadFile, max_bytes: int) -> bytes:
    """The file's bytes; empty or oversized files are refused before any service sees them."""
    data = await photo.read(max_bytes + 1)
    if not data:
        raise ApiError(400, "invalid_argument", "the photo is empty (0 bytes)")
    if len(data) > max_bytes:
        raise ApiError(
            413,
            "too_large",
            f"the photo is over {max_bytes // (1024 * 1024)} MB; send a smaller one",
        )
    return data
