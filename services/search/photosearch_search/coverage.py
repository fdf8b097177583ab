"""What a model covers of the catalog, in SQL: each image's state (embedded, failed,
queued, deleted) that rebuilds plan with, the embed jobs recorded for them, and the
counts the index status shows."""

from collections.abc import Sequence
from dataclasses import dataclass

from psycopg import AsyncConnection, sql

from photosearch_search.domain import Failure, ImageRef, Model


@dataclass(frozen=True)
class ImageState:
    """What search knows of one image for one model."""

    image_id: str
    # Has its vectors, and its local descriptors if it was embedded before the model's
    # first ones were stored.
    embedded: bool
    failed: bool
    deleted: bool
    # Seconds since a job for it was queued and not answered yet (None: no such job).
    queued_age: float | None


async def image_states(
    conn: AsyncConnection, model: Model | None, model_id: str, image_ids: Sequence[str]
) -> dict[str, ImageState]:
    # Once a model stores local descriptors, an image lacking them whose vectors predate
    # them (embedded before its embedders made them) is not done yet: a rebuild queues it
    # again. One embedded since then without them (its local pass failed, or they were
    # refused) is done: queueing it again would only repeat that.
    embedded = (
        sql.SQL(
            "EXISTS (SELECT 1 FROM {t} v WHERE v.image_id = r.image_id)"
            " AND NOT EXISTS (SELECT 1 FROM {t} v JOIN models m ON m.model_id = %(model)s"
            "  WHERE v.image_id = r.image_id AND v.updated_at < m.local_since"
            "  AND NOT EXISTS (SELECT 1 FROM local_descriptors l"
            "   WHERE l.model_id = %(model)s AND l.image_id = r.image_id))"
        ).format(t=sql.Identifier(model.table))
        if model is not None
        else sql.SQL("false")
    )
    query = sql.SQL(
        "SELECT r.image_id, {embedded},"
        " EXISTS (SELECT 1 FROM embed_failures f"
        "         WHERE f.model_id = %(model)s AND f.image_id = r.image_id),"
        " EXISTS (SELECT 1 FROM deleted_images d WHERE d.image_id = r.image_id),"
        " (SELECT extract(epoch FROM now() - q.queued_at)::float8 FROM embed_requests q"
        "  WHERE q.model_id = %(model)s AND q.image_id = r.image_id)"
        " FROM unnest(%(ids)s::text[]) AS r(image_id)"
    ).format(embedded=embedded)
    cur = await conn.execute(query, {"model": model_id, "ids": list(image_ids)})
    return {
        str(row[0]): ImageState(
            str(row[0]),
            bool(row[1]),
            bool(row[2]),
            bool(row[3]),
            None if row[4] is None else float(row[4]),
        )
        for row in await cur.fetchall()
    }


async def record_jobs(
    conn: AsyncConnection, model_id: str, refs: Sequence[ImageRef], rebuild_id: str | None
) -> None:
    if not refs:
        return
    await conn.execute(
        "INSERT INTO embed_requests (model_id, image_id, item_id, rebuild_id)"
        " SELECT %s, i, t, %s FROM unnest(%s::text[], %s::text[]) AS u(i, t)"
        " WHERE NOT EXISTS (SELECT 1 FROM deleted_images d WHERE d.image_id = u.i)"
        " ON CONFLICT (model_id, image_id) DO UPDATE"
        " SET queued_at = now(), rebuild_id = EXCLUDED.rebuild_id, item_id = EXCLUDED.item_id",
        (model_id, rebuild_id, [r.image_id for r in refs], [r.item_id for r in refs]),
    )


async def embedded_images(conn: AsyncConnection, model: Model) -> int:
    cur = await conn.execute(
        sql.SQL("SELECT count(*) FROM (SELECT DISTINCT image_id FROM {t}) s").format(
            t=sql.Identifier(model.table)
        )
    )
    row = await cur.fetchone()
    return int(row[0]) if row else 0


async def failures(conn: AsyncConnection, model_id: str, limit: int) -> tuple[int, list[Failure]]:
    cur = await conn.execute("SELECT count(*) FROM embed_failures WHERE model_id = %s", (model_id,))
    row = await cur.fetchone()
    total = int(row[0]) if row else 0
    cur = await conn.execute(
        "SELECT image_id, item_id, reason FROM embed_failures WHERE model_id = %s"
        " ORDER BY failed_at DESC, image_id LIMIT %s",
        (model_id, limit),
    )
    return total, [Failure(str(r[0]), str(r[1]), str(r[2])) for r in await cur.fetchall()]


async def oldest_job_seconds(conn: AsyncConnection, model_id: str) -> float:
    """Age of the oldest embed job of the model not answered yet (0: none waits)."""
    cur = await conn.execute(
        "SELECT coalesce(extract(epoch FROM now() - min(queued_at)), 0)::float8"
        " FROM embed_requests WHERE model_id = %s",
        (model_id,),
    )
    row = await cur.fetchone()
    return float(row[0]) if row else 0.0


async def outstanding_jobs(conn: AsyncConnection, model_id: str, rebuild_only: bool) -> int:
    query = "SELECT count(*) FROM embed_requests WHERE model_id = %s"
    if rebuild_only:
        query += " AND rebuild_id IS NOT NULL"
    cur = await conn.execute(query, (model_id,))  # type: ignore[arg-type]
    row = await cur.fetchone()
    return int(row[0]) if row else 0
