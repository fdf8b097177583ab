"""Migrations and NATS helpers against real Postgres and NATS."""

import asyncio
import sys

import pytest
from nats.js.api import RetentionPolicy

from photosearch.common import db, subjects
from photosearch.common import nats as nats_helpers
from photosearch.common.context import bind_request_id
from photosearch.events.v1 import events_pb2


@pytest.fixture
def migrations_package(tmp_path, monkeypatch):
    """A throw-away package of migration files."""
    folder = tmp_path / "demo_migrations"
    folder.mkdir()
    (folder / "__init__.py").write_text("")
    (folder / "001_items.sql").write_text("CREATE TABLE items (id int PRIMARY KEY);")
    (folder / "002_name.sql").write_text("ALTER TABLE items ADD COLUMN name text;")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "demo_migrations", folder
    sys.modules.pop("demo_migrations", None)


async def test_migrations_apply_once_in_order(database_url, migrations_package) -> None:
    package, folder = migrations_package
    assert await db.apply_migrations(database_url, package) == ["001_items.sql", "002_name.sql"]
    assert await db.apply_migrations(database_url, package) == []
    (folder / "003_index.sql").write_text("CREATE INDEX ON items (name);")
    assert await db.apply_migrations(database_url, package) == ["003_index.sql"]


async def test_concurrent_replicas_apply_each_migration_once(
    database_url, migrations_package
) -> None:
    package, _ = migrations_package
    results = await asyncio.gather(*(db.apply_migrations(database_url, package) for _ in range(4)))
    assert sorted(len(r) for r in results) == [0, 0, 0, 2]


async def test_a_failing_migration_leaves_nothing_half_applied(
    database_url, migrations_package
) -> None:
    package, folder = migrations_package
    (folder / "003_bad.sql").write_text("CREATE TABLE half (id int); SELECT no_such_function();")
    with pytest.raises(Exception, match="no_such_function"):
        await db.apply_migrations(database_url, package)
    pool = await db.open_pool(database_url)
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT to_regclass('half') IS NULL")
        assert (await cur.fetchone()) == (True,)
    await pool.close()


async def test_streams_are_declared_idempotently_and_publish_dedupes(nats_server) -> None:
    nc = await nats_helpers.connect(nats_server.url, "test")
    js = nc.jetstream()
    topology = nats_helpers.Topology()
    await nats_helpers.ensure_streams(js, topology)
    await nats_helpers.ensure_streams(js, topology)  # a second replica starting
    info = await js.stream_info(subjects.EMBED_JOBS_STREAM)
    assert info.config.retention == RetentionPolicy.WORK_QUEUE

    bind_request_id("req-7")
    job = events_pb2.EmbedJob(image_id="img-dedupe", item_id="it", model_id="m@1")
    subject = subjects.embed_job_subject("m@1")
    sub = await js.pull_subscribe(subject, "dedupe-test", stream=subjects.EMBED_JOBS_STREAM)
    for _ in range(3):
        await nats_helpers.publish(js, subject, job, msg_id="img-dedupe:m@1")
    messages = await sub.fetch(10, timeout=1)
    assert len(messages) == 1
    assert messages[0].headers[subjects.REQUEST_ID_HEADER] == "req-7"
    assert events_pb2.EmbedJob.FromString(messages[0].data) == job
    await messages[0].ack()
    await nc.close()


async def test_kv_bucket_is_created_once(nats_server) -> None:
    nc = await nats_helpers.connect(nats_server.url, "test")
    js = nc.jetstream()
    kv = await nats_helpers.ensure_kv(js, "demo_bucket", ttl=5)
    await kv.put("w1", b"alive")
    again = await nats_helpers.ensure_kv(js, "demo_bucket", ttl=5)
    assert (await again.get("w1")).value == b"alive"
    await nc.close()
