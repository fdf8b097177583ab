"""Catalog events go through the transactional outbox: each change's events are
published once, in commit order, also across a NATS outage and with replicas."""

import asyncio

import grpc
import psycopg
import pytest
from nats.js.api import DeliverPolicy

from photosearch.catalog.v1 import catalog_pb2
from photosearch.common import subjects
from photosearch_devstack.nats_server import NatsServer
from tests.support.catalog import (
    EventReader,
    image_bytes,
    make_settings,
    start_catalog,
)
from tests.support.metrics import scrape


def about(item_id: str):
    def keep(subject: str, event) -> bool:
        return getattr(event, "item_id", None) == item_id

    return keep


async def test_every_change_publishes_its_event_in_order(catalog, events) -> None:
    item = await catalog.item("Dark Magician", series="Yu-Gi-Oh!", maker="Konami", tags=["dark"])
    with pytest.raises(grpc.aio.AioRpcError):  # refused: no event either
        await catalog.image(item.id, image_bytes(1)[:-40])
    first = await catalog.image(item.id, image_bytes(1))
    await catalog.image(item.id, image_bytes(1))  # the same bytes: no second event
    second = await catalog.image(item.id, image_bytes(2))
    await catalog.stub.UpdateItem(
        catalog_pb2.UpdateItemRequest(item=catalog_pb2.Item(id=item.id, name="Dark Magician Girl"))
    )
    await catalog.stub.DeleteImage(catalog_pb2.DeleteImageRequest(id=first.image.id))
    await catalog.stub.DeleteItem(catalog_pb2.DeleteItemRequest(id=item.id))

    got = await events.collect(about(item.id), 6)
    assert [subject for subject, _ in got] == [
        subjects.ITEM_UPSERTED,
        subjects.IMAGE_ADDED,
        subjects.IMAGE_ADDED,
        subjects.ITEM_UPSERTED,
        subjects.IMAGE_DELETED,
        subjects.ITEM_DELETED,
    ]
    created, added1, added2, renamed, removed, deleted = (event for _, event in got)
    assert (created.name, created.series, created.maker, list(created.tags)) == (
        "Dark Magician",
        "Yu-Gi-Oh!",
        "Konami",
        ["dark"],
    )
    assert added1.image_id == first.image.id and added1.sha256 == first.image.sha256
    assert added2.image_id == second.image.id
    assert renamed.name == "Dark Magician Girl" and renamed.maker == ""  # no mask = replace
    assert removed.image_id == first.image.id
    assert list(deleted.image_ids) == [second.image.id]
    assert await events.quiet(about(item.id), 0.5) == []


async def test_events_wait_for_nats_and_arrive_once_in_order(database_url, tmp_path) -> None:
    nats = NatsServer(tmp_path / "js", log_file=tmp_path / "nats.log").start()
    settings = make_settings(database_url, nats.url, metrics_sample_seconds=0.1)
    service, catalog = await start_catalog(settings)
    try:
        item = await catalog.item("Outage")
        reader = await EventReader(nats.url, DeliverPolicy.ALL).start()
        assert len(await reader.collect(about(item.id), 1)) == 1  # the relay is connected
        await reader.close()

        nats.stop()
        added = [(await catalog.image(item.id, image_bytes(n))).image.id for n in range(100)]
        async with await psycopg.AsyncConnection.connect(database_url) as conn:
            cur = await conn.execute("SELECT count(*) FROM outbox")
            assert (await cur.fetchone())[0] == 100  # kept while NATS is away
        await asyncio.sleep(0.5)
        waiting = await scrape(service.metrics_url)
        assert waiting.value("catalog_outbox_pending") == 100
        assert waiting.value("catalog_outbox_oldest_seconds") > 0.3
        assert waiting.value("catalog_outbox_relay_leading") == 1
        nats.start()

        reader = await EventReader(nats.url, DeliverPolicy.ALL).start()
        got = await reader.collect(lambda s, e: s == subjects.IMAGE_ADDED, 100, timeout=60)
        assert [event.image_id for _, event in got] == added
        assert await reader.quiet(lambda s, e: s == subjects.IMAGE_ADDED, 1.0) == []
        await reader.close()
        async with await psycopg.AsyncConnection.connect(database_url) as conn:
            cur = await conn.execute("SELECT count(*) FROM outbox")
            assert (await cur.fetchone())[0] == 0  # deleted once acknowledged
        await asyncio.sleep(0.3)
        drained = await scrape(service.metrics_url)
        assert drained.value("catalog_outbox_pending") == 0
        assert drained.value("catalog_outbox_oldest_seconds") == 0
        assert drained.value("catalog_outbox_published_total") == 101
        assert drained.value("catalog_outbox_publish_failures_total") >= 1
    finally:
        await service.stop()
        nats.stop()


async def test_one_replica_relays_and_another_takes_over(database_url, nats_server, events):
    first_service, first = await start_catalog(make_settings(database_url, nats_server.url))
    second_service, second = await start_catalog(make_settings(database_url, nats_server.url))
    try:
        item = await first.item("Replicated")
        await asyncio.sleep(0.5)  # both relays have tried to lead by now
        leaders = [s.lifecycle.relay.leading for s in (first_service, second_service)]
        assert sorted(leaders) == [False, True]

        ids = []
        for n in range(10):
            writer = first if n % 2 else second
            ids.append((await writer.image(item.id, image_bytes(n))).image.id)
        leader, standby = (
            (first_service, second_service) if leaders[0] else (second_service, first_service)
        )
        await leader.stop()
        survivor = second if standby is second_service else first
        for n in range(10, 15):
            ids.append((await survivor.image(item.id, image_bytes(n))).image.id)

        got = await events.collect(
            lambda s, e: s == subjects.IMAGE_ADDED and e.item_id == item.id, 15, timeout=30
        )
        assert [event.image_id for _, event in got] == ids
        assert standby.lifecycle.relay.leading
    finally:
        for service in (first_service, second_service):
            if not service.task.done():
                await service.stop()
