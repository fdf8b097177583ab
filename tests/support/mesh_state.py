"""Read-only looks into the mesh's databases and streams, so a test can count what was
stored and what was delivered; and a lock a test holds to stall a service's queries."""

import asyncio
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from photosearch.common import subjects
from photosearch.events.v1 import events_pb2
from photosearch_devstack.mesh import Mesh


def database_url(mesh: Mesh, name: str) -> str:
    assert mesh.postgres is not None
    return mesh.postgres.url(name)


def catalog_image_ids(mesh: Mesh) -> set[str]:
    with psycopg.connect(database_url(mesh, "catalog"), autocommit=True) as conn:
        return {str(r[0]) for r in conn.execute("SELECT id FROM images").fetchall()}


def approved_image_ids(mesh: Mesh) -> set[str]:
    """The images the index should hold: all but those waiting for review."""
    with psycopg.connect(database_url(mesh, "catalog"), autocommit=True) as conn:
        rows = conn.execute("SELECT id FROM images WHERE NOT pending").fetchall()
        return {str(r[0]) for r in rows}


def images_without_bytes(mesh: Mesh) -> int:
    with psycopg.connect(database_url(mesh, "catalog"), autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM images i LEFT JOIN image_blobs b ON b.image_id = i.id"
            " WHERE b.image_id IS NULL"
        ).fetchone()
    return int(row[0]) if row else 0


def images_without_copy_hash(mesh: Mesh) -> int:
    """Images catalog's copy hasher has not hashed yet (it reads their bytes meanwhile)."""
    with psycopg.connect(database_url(mesh, "catalog"), autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM images i LEFT JOIN image_copy_hashes h ON h.image_id = i.id"
            " WHERE h.image_id IS NULL"
        ).fetchone()
    return int(row[0]) if row else 0


def outbox_subjects(mesh: Mesh) -> Counter[str]:
    """Events committed by catalog and not yet acknowledged by JetStream, per subject."""
    with psycopg.connect(database_url(mesh, "catalog"), autocommit=True) as conn:
        rows = conn.execute("SELECT subject, count(*) FROM outbox GROUP BY subject").fetchall()
    return Counter({str(subject): int(n) for subject, n in rows})


def vectors_per_image(mesh: Mesh, model_id: str, variant: str = "global") -> Counter[str]:
    """How many vectors of `model_id` search stores per image (read-only look)."""
    with psycopg.connect(database_url(mesh, "search"), autocommit=True) as conn:
        row = conn.execute("SELECT id FROM models WHERE model_id = %s", (model_id,)).fetchone()
        if row is None:
            return Counter()
        rows = conn.execute(
            f"SELECT image_id, count(*) FROM vectors_{int(row[0])} WHERE variant = %s"
            " GROUP BY image_id",
            (variant,),
        ).fetchall()
    return Counter({str(image_id): int(n) for image_id, n in rows})


def stored_vector(mesh: Mesh, model_id: str, image_id: str) -> list[float]:
    with psycopg.connect(database_url(mesh, "search"), autocommit=True) as conn:
        row = conn.execute("SELECT id FROM models WHERE model_id = %s", (model_id,)).fetchone()
        assert row is not None, model_id
        found = conn.execute(
            f"SELECT embedding::text FROM vectors_{int(row[0])}"
            " WHERE image_id = %s AND variant = 'global'",
            (image_id,),
        ).fetchone()
    assert found is not None, f"no vector for {image_id}"
    return [float(v) for v in str(found[0]).strip("[]").split(",")]


def vector_table(mesh: Mesh, model_id: str) -> str:
    with psycopg.connect(database_url(mesh, "search"), autocommit=True) as conn:
        row = conn.execute("SELECT id FROM models WHERE model_id = %s", (model_id,)).fetchone()
    assert row is not None, model_id
    return f"vectors_{int(row[0])}"


@contextmanager
def locked(url: str, statement: str) -> Iterator[None]:
    """Hold the lock `statement` takes, in an open transaction, until the block ends."""
    with psycopg.connect(url) as conn:
        conn.execute(statement)  # type: ignore[arg-type]
        try:
            yield
        finally:
            conn.rollback()


def waiting_on_locks(mesh: Mesh, database: str) -> int:
    """Backends of `database` waiting for a lock (requests held by a test's lock)."""
    with psycopg.connect(database_url(mesh, "postgres"), autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'",
            (database,),
        ).fetchone()
    return int(row[0]) if row else 0


async def _image_added_events(url: str) -> list[events_pb2.ImageAdded]:
    import nats

    nc = await nats.connect(url, connect_timeout=5)
    try:
        js = nc.jetstream()
        info = await js.stream_info(subjects.CATALOG_STREAM)
        found: list[events_pb2.ImageAdded] = []
        for seq in range(max(info.state.first_seq, 1), info.state.last_seq + 1):
            try:
                raw = await js.get_msg(subjects.CATALOG_STREAM, seq)
            except Exception:  # deleted or expired
                continue
            if raw.subject == subjects.IMAGE_ADDED:
                found.append(events_pb2.ImageAdded.FromString(raw.data or b""))
        return found
    finally:
        await nc.close()


def image_added_events(mesh: Mesh) -> Counter[str]:
    """How many `catalog.image.added` events the CATALOG stream holds per image."""
    assert mesh.nats is not None
    events = asyncio.run(_image_added_events(mesh.nats.url))
    return Counter(e.image_id for e in events)


async def _embed_queue(url: str, model_id: str) -> tuple[int, int]:
    import nats

    nc = await nats.connect(url, connect_timeout=5)
    try:
        info = await nc.jetstream().consumer_info(
            subjects.EMBED_JOBS_STREAM, subjects.embed_consumer_name(model_id)
        )
        return int(info.num_pending or 0), int(info.num_ack_pending or 0)
    finally:
        await nc.close()


def embed_queue(mesh: Mesh, model_id: str) -> tuple[int, int]:
    """(jobs waiting, jobs handed to a worker and not acknowledged yet)."""
    assert mesh.nats is not None
    return asyncio.run(_embed_queue(mesh.nats.url, model_id))


async def _embed_results(url: str, model_id: str) -> list[events_pb2.EmbedCompleted]:
    import nats

    nc = await nats.connect(url, connect_timeout=5)
    try:
        js = nc.jetstream()
        info = await js.stream_info(subjects.EMBED_RESULTS_STREAM)
        found: list[events_pb2.EmbedCompleted] = []
        for seq in range(max(info.state.first_seq, 1), info.state.last_seq + 1):
            try:
                raw = await js.get_msg(subjects.EMBED_RESULTS_STREAM, seq)
            except Exception:
                continue
            if raw.subject == subjects.EMBED_COMPLETED:
                done = events_pb2.EmbedCompleted.FromString(raw.data or b"")
                if done.model_id == model_id:
                    found.append(done)
        return found
    finally:
        await nc.close()


def embed_results(mesh: Mesh, model_id: str) -> Counter[str]:
    """How many `embed.completed` results the stream holds per image."""
    assert mesh.nats is not None
    return Counter(r.image_id for r in asyncio.run(_embed_results(mesh.nats.url, model_id)))
