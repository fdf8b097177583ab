"""Where image bytes live. The catalog only talks to `ImageStore`; the embedded
default keeps the bytes in Postgres (bytea) inside the image's own transaction,
so an image row never exists without its bytes. An object-store implementation
would `put` before the commit (an aborted transaction leaves an orphan blob for a
sweeper, never a row without bytes) and delete in `discard` after the commit."""

from collections.abc import Callable, Sequence
from typing import Protocol

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool


class ImageStore(Protocol):
    async def put(self, conn: AsyncConnection, blobs: Sequence[tuple[str, bytes]]) -> None:
        """Store (image id, original bytes) pairs; `conn` is inside the transaction
        adding the images."""

    async def get(self, image_id: str) -> bytes | None:
        """The original bytes, or None if there are none."""

    async def discard(self, image_ids: Sequence[str]) -> None:
        """Called after a deletion committed."""


class PostgresImageStore:
    """Bytes in the image_blobs table, deleted with their image by the foreign key."""

    def __init__(self, pool: Callable[[], AsyncConnectionPool]) -> None:
        self._pool = pool

    async def put(self, conn: AsyncConnection, blobs: Sequence[tuple[str, bytes]]) -> None:
        async with conn.cursor() as cur:
            await cur.executemany(
                "INSERT INTO image_blobs (image_id, data) VALUES (%s, %s)", list(blobs)
            )

    async def get(self, image_id: str) -> bytes | None:
        async with self._pool().connection() as conn:
            cur = await conn.execute(
                "SELECT data FROM image_blobs WHERE image_id = %s", (image_id,)
            )
            row = await cur.fetchone()
        return bytes(row[0]) if row else None

    async def discard(self, image_ids: Sequence[str]) -> None:
        return None  # ON DELETE CASCADE already removed them in the same transaction
