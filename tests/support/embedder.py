"""Test doubles for the embedder service."""

from photosearch.common.errors import NotFound, Unavailable


class MemoryImageSource:
    """Images held in memory, in place of catalog (an ImageSource); `unavailable`
    makes every fetch fail as an unreachable catalog does."""

    def __init__(self, images: dict[str, bytes] | None = None) -> None:
        self.images = dict(images or {})
        self.unavailable = False

    async def fetch(self, image_id: str) -> bytes:
        if self.unavailable:
            raise Unavailable("image source is unavailable")
        if image_id not in self.images:
            raise NotFound(f"image {image_id} is not in the catalog")
        return self.images[image_id]

    async def close(self) -> None:
        return None
