"""SQL of the write side: vectors in, item attributes, deletions, tombstones, failures.

Every function takes the connection of the caller's transaction, so one event's
effects commit together (and the event is acked only afterwards)."""

from collections.abc import Iterable, Sequence

from psycopg import AsyncConnection, sql

from photosearch_search import local_store
from photosearch_search.domain import EmbeddingIn, ImageRef, ItemSummary, Model

# pg_advisory_xact_lock(namespace, hashtext(item_id)): serialises an item's deletion
# with vectors arriving for it, so a late vector can never slip past the tombstone.
LOCK_ITEMS = 5202


async def lock_items(conn: AsyncConnection, item_ids: Iterable[str]) -> None:
    """Take the items' locks in one global order (no deadlock between consumers)."""
    ordered = sorted(set(item_ids))
    if ordered:
        await conn.execute(
            "SELECT pg_advisory_xact_lock(%s, hashtext(i))"
            " FROM unnest(%s::text[]) WITH ORDINALITY AS u(i, n) ORDER BY n",
            (LOCK_ITEMS, ordered),
        )


async def is_deleted(conn: AsyncConnection, image_id: str, item_id: str) -> bool:
    cur = await conn.execute(
        "SELECT EXISTS (SELECT 1 FROM deleted_images WHERE image_id = %s)"
        " OR EXISTS (SELECT 1 FROM deleted_items WHERE item_id = %s)",
        (image_id, item_id),
    )
    row = await cur.fetchone()
    return bool(row and row[0])


async def store_embeddings(
    conn: AsyncConnection,
    model: Model,
    ref: ImageRef,
    embeddings: Sequence[EmbeddingIn],
) -> bool:
    """Replace the image's vectors of this model. False when the image or its item
    was deleted meanwhile (the vectors are dropped, not resurrected)."""
    if await is_deleted(conn, ref.image_id, ref.item_id):
        return False
    t = sql.Identifier(model.table)
    variants = [e.variant for e in embeddings]
    await conn.execute(
        sql.SQL("DELETE FROM {t} WHERE image_id = %s AND NOT (variant = ANY(%s))").format(t=t),
        (ref.image_id, variants),
    )
    insert = sql.SQL(
        "INSERT INTO {t} (image_id, variant, item_id, series, maker, tags, embedding)"
        " SELECT %(image)s, %(variant)s, %(item)s, i.series, i.maker, coalesce(i.tags, '{{}}'),"
        " %(embedding)b FROM (SELECT 1) one LEFT JOIN items i ON i.item_id = %(item)s"
        " ON CONFLICT (image_id, variant) DO UPDATE SET item_id = EXCLUDED.item_id,"
        " series = EXCLUDED.series, maker = EXCLUDED.maker, tags = EXCLUDED.tags,"
        " embedding = EXCLUDED.embedding, updated_at = now()"
    ).format(t=t)
    async with conn.cursor() as cur:
        await cur.executemany(
            insert,
            [
                {
                    "image": ref.image_id,
                    "variant": e.variant,
                    "item": ref.item_id,
                    "embedding": e.values,
                }
                for e in embeddings
            ],
        )
    await resolve_job(conn, model.model_id, ref.image_id, succeeded=True)
    return True


async def resolve_job(
    conn: AsyncConnection, model_id: str, image_id: str, *, succeeded: bool
) -> None:
    await conn.execute(
        "DELETE FROM embed_requests WHERE model_id = %s AND image_id = %s", (model_id, image_id)
    )
    if succeeded:
        await conn.execute(
            "DELETE FROM embed_failures WHERE model_id = %s AND image_id = %s",
            (model_id, image_id),
        )


async def has_vector(conn: AsyncConnection, model: Model | None, image_id: str) -> bool:
    if model is None:
        return False
    cur = await conn.execute(
        sql.SQL("SELECT EXISTS (SELECT 1 FROM {t} WHERE image_id = %s)").format(
            t=sql.Identifier(model.table)
        ),
        (image_id,),
    )
    row = await cur.fetchone()
    return bool(row and row[0])


async def record_failure(
    conn: AsyncConnection, model: Model | None, model_id: str, ref: ImageRef, reason: str
) -> bool:
    """Remember why the model cannot embed this image. Not when the image was deleted
    or already has a vector (a stale failure must not count twice)."""
    await resolve_job(conn, model_id, ref.image_id, succeeded=False)
    if await is_deleted(conn, ref.image_id, ref.item_id) or await has_vector(
        conn, model, ref.image_id
    ):
        return False
    await conn.execute(
        "INSERT INTO embed_failures (model_id, image_id, item_id, reason)"
        " VALUES (%s, %s, %s, %s) ON CONFLICT (model_id, image_id) DO UPDATE"
        " SET reason = EXCLUDED.reason, item_id = EXCLUDED.item_id, failed_at = now()",
        (model_id, ref.image_id, ref.item_id, reason[:2000]),
    )
    return True


async def upsert_item(
    conn: AsyncConnection,
    models: Sequence[Model],
    item_id: str,
    attributes: tuple[str | None, str | None, list[str]],
    seq: int,
    summary: ItemSummary,
) -> bool:
    """Keep the item's filterable attributes (series, maker, tags), here and on its
    vectors, and what answers show of it, unless the item was deleted or a later event
    (higher seq) already set them."""
    cur = await conn.execute("SELECT 1 FROM deleted_items WHERE item_id = %s", (item_id,))
    if await cur.fetchone():
        return False
    series, maker, tags = attributes
    shown = (summary.name, summary.series, summary.maker, summary.year or None, summary.variant)
    cur = await conn.execute(
        "INSERT INTO items (item_id, series, maker, tags, seq,"
        " name, series_shown, maker_shown, year, variant)"
        " VALUES (%s, %s, %s, %s::text[], %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (item_id) DO UPDATE SET series = EXCLUDED.series,"
        " maker = EXCLUDED.maker, tags = EXCLUDED.tags, seq = EXCLUDED.seq,"
        " name = EXCLUDED.name, series_shown = EXCLUDED.series_shown,"
        " maker_shown = EXCLUDED.maker_shown, year = EXCLUDED.year,"
        " variant = EXCLUDED.variant, updated_at = now()"
        " WHERE items.seq <= EXCLUDED.seq RETURNING 1",
        (item_id, series, maker, tags, seq, *shown),
    )
    if await cur.fetchone() is None:
        return False  # an older event, redelivered after a newer one
    for model in models:
        await conn.execute(
            sql.SQL(
                "UPDATE {t} SET series = %s, maker = %s, tags = %s::text[] WHERE item_id = %s"
                " AND (series, maker, tags) IS DISTINCT FROM (%s::text, %s::text, %s::text[])"
            ).format(t=sql.Identifier(model.table)),
            (series, maker, tags, item_id, series, maker, tags),
        )
    return True


async def delete_images(
    conn: AsyncConnection, models: Sequence[Model], image_ids: Sequence[str]
) -> None:
    """Tombstone the images and forget everything search holds about them."""
    ids = list(image_ids)
    if not ids:
        return
    await conn.execute(
        "INSERT INTO deleted_images (image_id) SELECT unnest(%s::text[])"
        " ON CONFLICT (image_id) DO NOTHING",
        (ids,),
    )
    for model in models:
        await conn.execute(
            sql.SQL("DELETE FROM {t} WHERE image_id = ANY(%s)").format(
                t=sql.Identifier(model.table)
            ),
            (ids,),
        )
    await local_store.delete_images(conn, ids)
    await conn.execute("DELETE FROM embed_failures WHERE image_id = ANY(%s)", (ids,))
    await conn.execute("DELETE FROM embed_requests WHERE image_id = ANY(%s)", (ids,))


async def delete_item(
    conn: AsyncConnection, models: Sequence[Model], item_id: str, image_ids: Sequence[str]
) -> None:
    """Tombstone the item (and the images it names) and drop all of it."""
    await conn.execute(
        "INSERT INTO deleted_items (item_id) VALUES (%s) ON CONFLICT (item_id) DO NOTHING",
        (item_id,),
    )
    await delete_images(conn, models, image_ids)
    for model in models:
        await conn.execute(
            sql.SQL("DELETE FROM {t} WHERE item_id = %s").format(t=sql.Identifier(model.table)),
            (item_id,),
        )
    await local_store.delete_item(conn, item_id)
    await conn.execute("DELETE FROM embed_failures WHERE item_id = %s", (item_id,))
    await conn.execute("DELETE FROM embed_requests WHERE item_id = %s", (item_id,))
    await conn.execute("DELETE FROM items WHERE item_id = %s", (item_id,))
