"""The catalog's logic: items and images, each change and its events in one
transaction. No gRPC here (servicer.py translates)."""

import dataclasses
import uuid
from collections.abc import AsyncIterator, Callable

from psycopg import AsyncConnection
from psycopg import errors as pg_errors
from psycopg_pool import AsyncConnectionPool

from photosearch.common.errors import InvalidArgument, NotFound, Unavailable
from photosearch_catalog import events
from photosearch_catalog.copy_report import copy_report
from photosearch_catalog.cursor import decode_token, encode_token
from photosearch_catalog.domain import (
    APPROVED,
    Contribution,
    Contributor,
    CopyReport,
    Image,
    ImageRef,
    ImageRole,
    Item,
    ItemFields,
    ItemFilter,
    ItemPage,
    NewImage,
)
from photosearch_catalog.intake import (
    ImageLimits,
    ThumbnailCache,
    content_type,
    sha256_hex,
    validate_image,
)
from photosearch_catalog.outbox import enqueue
from photosearch_catalog.repository import CatalogRepository
from photosearch_catalog.storage import ImageStore
from photosearch_catalog.validation import apply_mask, normalise_fields, parse_id

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
MAX_BATCH_GET = 1000
DEFAULT_REF_BATCH = 1000
MAX_REF_BATCH = 10_000
DEFAULT_CONTRIBUTIONS = 20
MAX_CONTRIBUTIONS = 100


class CatalogService:
    def __init__(
        self,
        pool: Callable[[], AsyncConnectionPool],
        store: ImageStore,
        limits: ImageLimits,
        thumbnails: ThumbnailCache,
        on_stored: Callable[[list[str]], None] = lambda image_ids: None,
    ) -> None:
        self._pool_of = pool
        self.store = store
        self.limits = limits
        self.thumbnails = thumbnails
        # Told the ids of images once committed (the copy hasher hashes them).
        self.on_stored = on_stored
        self.repo = CatalogRepository()

    def pool(self) -> AsyncConnectionPool:
        try:
            return self._pool_of()
        except RuntimeError:
            raise Unavailable(
                "the catalog is starting: its database is not connected yet"
            ) from None

    # Items

    async def create_item(
        self, fields: ItemFields, import_key: str = "", by: Contributor = APPROVED
    ) -> Item:
        fields = normalise_fields(fields)
        item_id = str(uuid.uuid4())
        async with self.pool().connection() as conn, conn.transaction():
            await self.repo.insert_item(conn, item_id, fields, import_key.strip() or None, by)
            if not by.pending:  # search hears of a pending item once it is approved
                await enqueue(conn, [events.item_upserted(item_id, fields)])
            item = await self.repo.get_item(conn, item_id)
        assert item is not None
        return item

    async def get_item(self, item_id: str) -> Item:
        item_id = parse_id(item_id, "item id")
        async with self.pool().connection() as conn:
            item = await self.repo.get_item(conn, item_id)
        if item is None:
            raise NotFound(f"no item with id {item_id}")
        return item

    async def batch_get_items(self, item_ids: list[str]) -> list[Item]:
        """Items in the order asked for; unknown or malformed ids are skipped."""
        if len(item_ids) > MAX_BATCH_GET:
            raise InvalidArgument(f"ask for at most {MAX_BATCH_GET} items at once")
        wanted: list[str] = []
        for raw in item_ids:
            try:
                wanted.append(parse_id(raw, "item id"))
            except InvalidArgument:
                continue
        if not wanted:
            return []
        async with self.pool().connection() as conn:
            found = {item.id: item for item in await self.repo.get_items(conn, wanted)}
        return [found[i] for i in wanted if i in found]

    async def update_item(self, item_id: str, update: ItemFields, mask: list[str]) -> Item:
        item_id = parse_id(item_id, "item id")
        async with self.pool().connection() as conn, conn.transaction():
            current = await self.repo.get_item(conn, item_id, for_update=True)
            if current is None:
                raise NotFound(f"no item with id {item_id}")
            fields = normalise_fields(apply_mask(current.fields, update, mask))
            if fields == current.fields:
                return current
            await self.repo.update_item(conn, item_id, fields)
            if not current.pending:
                await enqueue(conn, [events.item_upserted(item_id, fields)])
            item = await self.repo.get_item(conn, item_id)
        assert item is not None
        return item

    async def delete_item(self, item_id: str) -> None:
        item_id = parse_id(item_id, "item id")
        async with self.pool().connection() as conn, conn.transaction():
            image_ids = await self.repo.delete_item(conn, item_id)
            if image_ids is None:
                raise NotFound(f"no item with id {item_id}")
            await enqueue(conn, [events.item_deleted(item_id, image_ids)])
        await self.store.discard(image_ids)
        self.thumbnails.forget(image_ids)

    async def list_items(
        self, filters: ItemFilter, page_size: int, page_token: str, include_pending: bool = False
    ) -> ItemPage:
        if page_size < 0:
            raise InvalidArgument("page_size must not be negative")
        size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        filters = ItemFilter(
            *(
                " ".join(v.split())
                for v in (filters.query, filters.series, filters.maker, filters.tag)
            )
        )
        after = decode_token(page_token, filters)
        async with self.pool().connection() as conn:
            items = await self.repo.list_items(conn, filters, after, size + 1, include_pending)
        more = len(items) > size
        items = items[:size]
        token = encode_token(items[-1].fields.name, items[-1].id, filters) if more else ""
        return ItemPage(items, token)

    # Images

    async def add_image(
        self,
        item_id: str,
        role: ImageRole,
        data: bytes,
        filename: str,
        by: Contributor = APPROVED,
    ) -> tuple[Image, bool]:
        """Validate and store; (image, created). The same bytes again return the first copy.
        An image of a pending item is pending too: approving the item approves it."""
        item_id = parse_id(item_id, "item id")
        sha = sha256_hex(data)
        async with self.pool().connection() as conn:
            item_pending = await self.repo.item_pending(conn, item_id)
            if item_pending is None:
                raise NotFound(f"no item with id {item_id}")
            existing = await self.repo.find_image(conn, item_id, sha)
        if existing is not None:
            return existing, False
        if item_pending:
            by = Contributor(by.added_by, pending=True)
        image = await validate_image(data, role, filename, self.limits, sha)
        async with self.pool().connection() as conn, conn.transaction():
            stored = await self.store_image(conn, item_id, image, by)
        if stored is not None:
            self.on_stored([stored.id])
        if stored is None:  # a concurrent call stored the same bytes first
            async with self.pool().connection() as conn:
                again = await self.repo.find_image(conn, item_id, sha)
            if again is None:
                raise Unavailable("the image changed while being added: try again")
            return again, False
        return stored, True

    async def store_image(
        self, conn: AsyncConnection, item_id: str, image: NewImage, by: Contributor = APPROVED
    ) -> Image | None:
        """Row, bytes and (unless pending) the ImageAdded event, in the caller's transaction."""
        try:
            stored = await self.repo.insert_image(conn, str(uuid.uuid4()), item_id, image, by)
        except pg_errors.ForeignKeyViolation:
            raise NotFound(f"no item with id {item_id} (it was deleted)") from None
        if stored is None:
            return None
        await self.store.put(conn, [(stored.id, image.data)])
        if not stored.pending:
            await enqueue(conn, [events.image_added(stored)])
        return stored

    async def get_image(self, image_id: str, thumbnail_size: int) -> tuple[Image, bytes, str]:
        """(metadata, bytes, content type): the original, or a JPEG fitting the size."""
        image_id = parse_id(image_id, "image id")
        if thumbnail_size:
            self.thumbnails.check_size(thumbnail_size)
        async with self.pool().connection() as conn:
            image = await self.repo.get_image(conn, image_id)
        if image is None:
            raise NotFound(f"no image with id {image_id}")
        data = await self.store.get(image_id)
        if data is None:
            raise NotFound(f"image {image_id} was deleted")
        if not thumbnail_size:
            return image, data, content_type(image.format)
        return image, await self.thumbnails.get(image_id, thumbnail_size, data), "image/jpeg"

    async def delete_image(self, image_id: str) -> None:
        image_id = parse_id(image_id, "image id")
        async with self.pool().connection() as conn, conn.transaction():
            image = await self.repo.delete_image(conn, image_id)
            if image is None:
                raise NotFound(f"no image with id {image_id}")
            await enqueue(conn, [events.image_deleted(image)])
        await self.store.discard([image_id])
        self.thumbnails.forget([image_id])

    async def list_images(self, item_id: str, include_pending: bool = False) -> list[Image]:
        item_id = parse_id(item_id, "item id")
        async with self.pool().connection() as conn:
            if not await self.repo.item_exists(conn, item_id):
                raise NotFound(f"no item with id {item_id}")
            return await self.repo.list_images(conn, item_id, include_pending)

    # Review

    async def list_contributions(self, page_size: int) -> tuple[list[Contribution], int]:
        if page_size < 0:
            raise InvalidArgument("page_size must not be negative")
        size = min(page_size or DEFAULT_CONTRIBUTIONS, MAX_CONTRIBUTIONS)
        async with self.pool().connection() as conn:
            return await self.repo.contributions(conn, size)

    async def approve_item(self, item_id: str) -> Item:
        """The item and its pending images become public, and are announced: search stores
        the item and the embedders fingerprint the images. Approving twice changes nothing."""
        item_id = parse_id(item_id, "item id")
        async with self.pool().connection() as conn, conn.transaction():
            approved = await self.repo.approve_item(conn, item_id)
            if approved is None:
                raise NotFound(f"no item with id {item_id}")
            was_pending, images = approved
            item = await self.repo.get_item(conn, item_id)
            assert item is not None
            announced = [events.item_upserted(item_id, item.fields)] if was_pending else []
            announced += [events.image_added(image) for image in images]
            await enqueue(conn, announced)
        return item

    async def approve_image(self, image_id: str) -> Image:
        """One image becomes public (and its item, if that was pending too)."""
        image_id = parse_id(image_id, "image id")
        async with self.pool().connection() as conn, conn.transaction():
            image = await self.repo.approve_image(conn, image_id)
            if image is None:
                raise NotFound(f"no image with id {image_id}")
            if not image.pending:
                return image
            announced = []
            if await self.repo.item_pending(conn, image.item_id):
                item = await self.repo.approve_item_only(conn, image.item_id)
                announced.append(events.item_upserted(item.id, item.fields))
            approved = dataclasses.replace(image, pending=False)
            await enqueue(conn, [*announced, events.image_added(approved)])
        return approved

    async def stream_image_refs(self, batch_size: int) -> AsyncIterator[list[ImageRef]]:
        """Every (image, item) in id order, one short query per batch (keyset pagination),
        so a walk over millions holds no transaction open."""
        if batch_size < 0:
            raise InvalidArgument("batch_size must not be negative")
        size = min(batch_size or DEFAULT_REF_BATCH, MAX_REF_BATCH)
        after: str | None = None
        while True:
            async with self.pool().connection() as conn:
                refs = await self.repo.image_refs(conn, after, size)
            if refs:
                yield refs
            if len(refs) < size:
                return
            after = refs[-1].image_id

    async def count_images(self) -> int:
        async with self.pool().connection() as conn:
            return await self.repo.count_images(conn)

    async def find_copies(self, max_distance: int, limit: int) -> CopyReport:
        return await copy_report(self.pool(), self.repo, max_distance, limit)
