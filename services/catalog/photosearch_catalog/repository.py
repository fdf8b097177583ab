"""SQL for items and images. Every method takes the connection (and so the
transaction) of its caller and returns domain objects."""

from typing import Any

from psycopg import AsyncConnection, errors

from photosearch.common.errors import AlreadyExists
from photosearch_catalog.domain import (
    APPROVED,
    Contribution,
    Contributor,
    CopyHash,
    Image,
    ImageRef,
    Item,
    ItemFields,
    ItemFilter,
    NewImage,
    StoredCopyHash,
)
from photosearch_catalog.rows import (
    IMAGE_COLUMNS,
    ITEM_COLUMN_COUNT,
    ITEM_COLUMNS,
    image_from_row,
    image_values,
    item_from_row,
    item_values,
    like_pattern,
)

# Images with no copy hash of the scheme version bound to %s.
_UNHASHED = (
    "FROM images m LEFT JOIN image_copy_hashes h ON h.image_id = m.id"
    " WHERE h.image_id IS NULL OR h.version <> %s"
)


class CatalogRepository:
    async def insert_item(
        self,
        conn: AsyncConnection,
        item_id: str,
        fields: ItemFields,
        import_key: str | None,
        by: Contributor = APPROVED,
    ) -> None:
        try:
            await conn.execute(
                "INSERT INTO items (id, name, series, maker, year, variant, tags, attributes,"
                " external_refs, import_key, pending, added_by)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (item_id, *item_values(fields), import_key or None, by.pending, by.added_by),
            )
        except errors.UniqueViolation:
            raise AlreadyExists(f"an item with import key {import_key!r} already exists") from None

    async def import_state(
        self, conn: AsyncConnection, import_keys: list[str]
    ) -> dict[str, tuple[str, ItemFields, set[str]]]:
        """For each key that has an item: (item id, its fields, the sha256 of its images)."""
        cur = await conn.execute(
            f"SELECT {ITEM_COLUMNS}, array(SELECT m.sha256 FROM images m WHERE m.item_id = i.id)"
            " FROM items i WHERE i.import_key = ANY(%s)",
            (import_keys,),
        )
        state = {}
        for row in await cur.fetchall():
            item = item_from_row(row)
            state[item.import_key] = (item.id, item.fields, set(row[ITEM_COLUMN_COUNT]))
        return state

    async def insert_items_for_import(
        self, conn: AsyncConnection, rows: list[tuple[str, ItemFields, str]]
    ) -> set[str]:
        """Insert (id, fields, import key) rows, skipping keys taken meanwhile; the ids inserted."""
        async with conn.cursor() as cur:
            await cur.executemany(
                "INSERT INTO items (id, name, series, maker, year, variant, tags, attributes,"
                " external_refs, import_key) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (import_key) DO NOTHING RETURNING id::text",
                [(item_id, *item_values(fields), key) for item_id, fields, key in rows],
                returning=True,
            )
            inserted: set[str] = set()
            async for result in cur.results():
                inserted.update(row[0] for row in await result.fetchall())
        return inserted

    async def insert_images(
        self,
        conn: AsyncConnection,
        rows: list[tuple[str, str, NewImage]],
        by: Contributor = APPROVED,
    ) -> list[Image]:
        """Insert (image id, item id, image) rows in one round; those already on their
        item (the same sha256) are skipped. The images inserted, in order."""
        async with conn.cursor() as cur:
            await cur.executemany(
                "INSERT INTO images (id, item_id, role, sha256, width, height, format,"
                " size_bytes, filename, pending, added_by)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                f" ON CONFLICT (item_id, sha256) DO NOTHING RETURNING {IMAGE_COLUMNS}",
                [image_values(i, item_id, image, by) for i, item_id, image in rows],
                returning=True,
            )
            inserted: list[Image] = []
            async for result in cur.results():
                inserted.extend(image_from_row(row) for row in await result.fetchall())
        return inserted

    async def put_copy_hashes(
        self, conn: AsyncConnection, hashes: list[tuple[str, CopyHash]]
    ) -> None:
        if not hashes:
            return
        async with conn.cursor() as cur:
            await cur.executemany(
                "INSERT INTO image_copy_hashes (image_id, version, quality, views, features)"
                " SELECT id, %s, %s, %s, %s FROM images WHERE id = %s"  # gone: nothing to hash
                " ON CONFLICT (image_id) DO UPDATE SET version = excluded.version,"
                " quality = excluded.quality, views = excluded.views,"
                " features = excluded.features",
                [(h.version, h.quality, h.views, h.features, image_id) for image_id, h in hashes],
            )

    async def copy_hashes(self, conn: AsyncConnection, version: int) -> list[StoredCopyHash]:
        """Every image's hashes of this scheme version, with its item."""
        async with conn.cursor(binary=True) as cur:
            await cur.execute(
                "SELECT m.id::text, m.item_id::text, h.quality, h.views, h.features"
                " FROM image_copy_hashes h"
                " JOIN images m ON m.id = h.image_id WHERE h.version = %s ORDER BY m.id",
                (version,),
            )
            rows = await cur.fetchall()
        return [StoredCopyHash(r[0], r[1], int(r[2]), bytes(r[3]), bytes(r[4])) for r in rows]

    async def unhashed_images(self, conn: AsyncConnection, version: int, limit: int) -> list[str]:
        """Images without a hash of this version (stored before hashing, or by an older
        scheme), oldest id first."""
        cur = await conn.execute(
            f"SELECT m.id::text {_UNHASHED} ORDER BY m.id LIMIT %s", (version, limit)
        )
        return [row[0] for row in await cur.fetchall()]

    async def count_unhashed(self, conn: AsyncConnection, version: int) -> int:
        cur = await conn.execute(f"SELECT count(*) {_UNHASHED}", (version,))
        row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def update_item(self, conn: AsyncConnection, item_id: str, fields: ItemFields) -> None:
        await conn.execute(
            "UPDATE items SET name = %s, series = %s, maker = %s, year = %s, variant = %s,"
            " tags = %s, attributes = %s, external_refs = %s, updated_at = now() WHERE id = %s",
            (*item_values(fields), item_id),
        )

    async def get_item(
        self, conn: AsyncConnection, item_id: str, *, for_update: bool = False
    ) -> Item | None:
        lock = " FOR UPDATE OF i" if for_update else ""
        cur = await conn.execute(
            f"SELECT {ITEM_COLUMNS} FROM items i WHERE i.id = %s{lock}", (item_id,)
        )
        row = await cur.fetchone()
        return item_from_row(row) if row else None

    async def get_items(self, conn: AsyncConnection, item_ids: list[str]) -> list[Item]:
        cur = await conn.execute(
            f"SELECT {ITEM_COLUMNS} FROM items i WHERE i.id = ANY(%s::uuid[])", (item_ids,)
        )
        return [item_from_row(row) for row in await cur.fetchall()]

    async def item_exists(self, conn: AsyncConnection, item_id: str) -> bool:
        return await self.item_pending(conn, item_id) is not None

    async def item_pending(self, conn: AsyncConnection, item_id: str) -> bool | None:
        """Whether the item waits for review; None when there is no such item."""
        cur = await conn.execute("SELECT pending FROM items WHERE id = %s", (item_id,))
        row = await cur.fetchone()
        return bool(row[0]) if row else None

    async def approve_item(
        self, conn: AsyncConnection, item_id: str
    ) -> tuple[bool, list[Image]] | None:
        """Approve an item and its pending images: (whether the item itself was pending,
        the images approved now), or None when there is no such item."""
        cur = await conn.execute("SELECT pending FROM items WHERE id = %s FOR UPDATE", (item_id,))
        row = await cur.fetchone()
        if row is None:
            return None
        if row[0]:
            await conn.execute("UPDATE items SET pending = false WHERE id = %s", (item_id,))
        cur = await conn.execute(
            f"UPDATE images SET pending = false WHERE item_id = %s AND pending"
            f" RETURNING {IMAGE_COLUMNS}",
            (item_id,),
        )
        return bool(row[0]), [image_from_row(r) for r in await cur.fetchall()]

    async def approve_item_only(self, conn: AsyncConnection, item_id: str) -> Item:
        """The item, no longer pending (its other images stay as they are)."""
        await conn.execute("UPDATE items SET pending = false WHERE id = %s", (item_id,))
        item = await self.get_item(conn, item_id)
        assert item is not None, "the caller holds the image, which holds the item"
        return item

    async def approve_image(self, conn: AsyncConnection, image_id: str) -> Image | None:
        """Approve one image (its row as it was); None when there is no such image."""
        cur = await conn.execute(
            f"SELECT {IMAGE_COLUMNS} FROM images WHERE id = %s FOR UPDATE", (image_id,)
        )
        row = await cur.fetchone()
        if row is None:
            return None
        await conn.execute("UPDATE images SET pending = false WHERE id = %s", (image_id,))
        return image_from_row(row)

    async def contributions(
        self, conn: AsyncConnection, limit: int
    ) -> tuple[list[Contribution], int]:
        """Items pending or with pending images, oldest contribution first, and how many."""
        pending_items = (
            "SELECT i.id, least(CASE WHEN i.pending THEN i.created_at END,"
            " (SELECT min(m.created_at) FROM images m WHERE m.item_id = i.id AND m.pending))"
            " AS since FROM items i WHERE i.pending"
            " OR EXISTS (SELECT 1 FROM images m WHERE m.item_id = i.id AND m.pending)"
        )
        cur = await conn.execute(f"SELECT count(*) FROM ({pending_items}) p")
        total_row = await cur.fetchone()
        cur = await conn.execute(
            f"SELECT {ITEM_COLUMNS} FROM ({pending_items}) p JOIN items i ON i.id = p.id"
            " ORDER BY p.since, i.id LIMIT %s",
            (limit,),
        )
        items = [item_from_row(row) for row in await cur.fetchall()]
        cur = await conn.execute(
            f"SELECT {IMAGE_COLUMNS} FROM images WHERE pending AND item_id = ANY(%s::uuid[])"
            " ORDER BY created_at, id",
            ([item.id for item in items],),
        )
        images: dict[str, list[Image]] = {item.id: [] for item in items}
        for row in await cur.fetchall():
            image = image_from_row(row)
            images[image.item_id].append(image)
        total = int(total_row[0]) if total_row else 0
        return [Contribution(item, images[item.id]) for item in items], total

    async def delete_item(self, conn: AsyncConnection, item_id: str) -> list[str] | None:
        """Delete an item and its images; the ids of those images, or None if no such item."""
        cur = await conn.execute("SELECT id FROM items WHERE id = %s FOR UPDATE", (item_id,))
        if await cur.fetchone() is None:
            return None
        cur = await conn.execute(
            "SELECT id::text FROM images WHERE item_id = %s ORDER BY role, created_at, id",
            (item_id,),
        )
        image_ids = [row[0] for row in await cur.fetchall()]
        await conn.execute("DELETE FROM items WHERE id = %s", (item_id,))
        return image_ids

    async def list_items(
        self,
        conn: AsyncConnection,
        filters: ItemFilter,
        after: tuple[str, str] | None,
        limit: int,
        include_pending: bool = False,
    ) -> list[Item]:
        """A page in (lower(name), id) order, strictly after `after` = (name, id)."""
        where: list[str] = [] if include_pending else ["NOT i.pending"]
        params: list[Any] = []
        if filters.query:
            where.append("i.name ILIKE %s")
            params.append(like_pattern(filters.query))
        if filters.series:
            where.append("lower(i.series) = lower(%s)")
            params.append(filters.series)
        if filters.maker:
            where.append("lower(i.maker) = lower(%s)")
            params.append(filters.maker)
        if filters.tag:
            where.append("i.tags @> ARRAY[%s]::text[]")
            params.append(filters.tag)
        if after is not None:
            where.append("(lower(i.name), i.id) > (lower(%s), %s::uuid)")
            params.extend(after)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        cur = await conn.execute(
            f"SELECT {ITEM_COLUMNS} FROM items i {clause} ORDER BY lower(i.name), i.id LIMIT %s",
            (*params, limit),
        )
        return [item_from_row(row) for row in await cur.fetchall()]

    async def find_image(self, conn: AsyncConnection, item_id: str, sha256: str) -> Image | None:
        cur = await conn.execute(
            f"SELECT {IMAGE_COLUMNS} FROM images WHERE item_id = %s AND sha256 = %s",
            (item_id, sha256),
        )
        row = await cur.fetchone()
        return image_from_row(row) if row else None

    async def insert_image(
        self,
        conn: AsyncConnection,
        image_id: str,
        item_id: str,
        image: NewImage,
        by: Contributor = APPROVED,
    ) -> Image | None:
        """Insert unless the item has these bytes already (then None)."""
        inserted = await self.insert_images(conn, [(image_id, item_id, image)], by)
        return inserted[0] if inserted else None

    async def get_image(self, conn: AsyncConnection, image_id: str) -> Image | None:
        cur = await conn.execute(f"SELECT {IMAGE_COLUMNS} FROM images WHERE id = %s", (image_id,))
        row = await cur.fetchone()
        return image_from_row(row) if row else None

    async def delete_image(self, conn: AsyncConnection, image_id: str) -> Image | None:
        cur = await conn.execute(
            f"DELETE FROM images WHERE id = %s RETURNING {IMAGE_COLUMNS}", (image_id,)
        )
        row = await cur.fetchone()
        return image_from_row(row) if row else None

    async def list_images(
        self, conn: AsyncConnection, item_id: str, include_pending: bool = False
    ) -> list[Image]:
        approved = "" if include_pending else " AND NOT pending"
        cur = await conn.execute(
            f"SELECT {IMAGE_COLUMNS} FROM images WHERE item_id = %s{approved}"
            " ORDER BY role, created_at, id",
            (item_id,),
        )
        return [image_from_row(row) for row in await cur.fetchall()]

    async def image_refs(
        self, conn: AsyncConnection, after_image_id: str | None, limit: int
    ) -> list[ImageRef]:
        if after_image_id is None:
            cur = await conn.execute(
                "SELECT id::text, item_id::text FROM images WHERE NOT pending ORDER BY id LIMIT %s",
                (limit,),
            )
        else:
            cur = await conn.execute(
                "SELECT id::text, item_id::text FROM images WHERE id > %s AND NOT pending"
                " ORDER BY id LIMIT %s",
                (after_image_id, limit),
            )
        return [ImageRef(row[0], row[1]) for row in await cur.fetchall()]

    async def count_images(self, conn: AsyncConnection) -> int:
        cur = await conn.execute("SELECT count(*) FROM images WHERE NOT pending")
        row = await cur.fetchone()
        return int(row[0]) if row else 0
