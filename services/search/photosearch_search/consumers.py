"""Search's two durable JetStream consumers: catalog events and embed results in, each
handed to the indexer and acked only after the database commit (a crash before the ack
means a redelivery, which is idempotent)."""

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from google.protobuf.message import DecodeError, Message
from nats.aio.msg import Msg

from photosearch.common import subjects
from photosearch.common.context import bind_request_id
from photosearch.common.infra import Infra
from photosearch.common.logging import get_logger
from photosearch.common.nats import bind_pull, pull_batches
from photosearch.events.v1 import events_pb2
from photosearch_search.indexer import Indexer

log = get_logger(__name__)

CATALOG_CONSUMER = "search-catalog"
RESULTS_CONSUMER = "search-embed-results"

_CATALOG_EVENTS: dict[str, type[Message]] = {
    subjects.IMAGE_ADDED: events_pb2.ImageAdded,
    subjects.IMAGE_DELETED: events_pb2.ImageDeleted,
    subjects.ITEM_UPSERTED: events_pb2.ItemUpserted,
    subjects.ITEM_DELETED: events_pb2.ItemDeleted,
}


def retry_delay(msg: Msg) -> float:
    """Back off 0.5 s, 1 s, 2 s ... up to 30 s as a message keeps failing."""
    try:
        delivered = msg.metadata.num_delivered
    except Exception:
        delivered = 1
    return float(min(0.5 * 2 ** max(delivered - 1, 0), 30.0))


def _bind_request_id(msg: Msg) -> None:
    bind_request_id((msg.headers or {}).get(subjects.REQUEST_ID_HEADER))


@dataclass(frozen=True)
class Consumer:
    """One durable pull consumer, fetching batches until stopped."""

    infra: Infra
    stream: str
    durable: str
    handle: Callable[[list[Msg]], Awaitable[None]]
    batch: int

    async def run(self, stopping: asyncio.Event) -> None:
        sub = await bind_pull(self.infra.require_js(), self.stream, self.durable, ack_wait=60.0)
        log.info("consumer.started", stream=self.stream, durable=self.durable)
        try:
            batches = pull_batches(
                sub, self.batch, timeout=1.0, stopping=stopping, consumer=self.durable
            )
            async for msgs in batches:
                await self.handle(msgs)
        finally:
            # Leave the durable consumer in place; only this subscription goes.
            await sub.unsubscribe()


class CatalogEvents:
    """Stream CATALOG: images queued for embedding, item attributes, deletions."""

    def __init__(self, indexer: Indexer) -> None:
        self._indexer = indexer

    async def handle(self, msgs: list[Msg]) -> None:
        for msg in msgs:  # in order: an item's events must not overtake each other
            await self._one(msg)

    async def _one(self, msg: Msg) -> None:
        _bind_request_id(msg)
        kind = _CATALOG_EVENTS.get(msg.subject)
        if kind is None:  # an event search has no use for
            await msg.ack()
            return
        event = kind()
        try:
            event.ParseFromString(msg.data)
        except DecodeError:
            log.error("event.undecodable", subject=msg.subject)
            await msg.term()
            return
        try:
            if isinstance(event, events_pb2.ImageAdded):
                await self._indexer.image_added(event)
            elif isinstance(event, events_pb2.ImageDeleted):
                await self._indexer.image_deleted(event)
            elif isinstance(event, events_pb2.ItemUpserted):
                await self._indexer.item_upserted(event, msg.metadata.sequence.stream)
            elif isinstance(event, events_pb2.ItemDeleted):
                await self._indexer.item_deleted(event)
        except Exception as exc:
            delay = retry_delay(msg)
            log.warning("event.retry", subject=msg.subject, error=str(exc), retry_in_s=delay)
            await msg.nak(delay=delay)
            return
        await msg.ack()


class EmbedResults:
    """Stream EMBED_RESULTS: vectors and failures, a fetched batch per transaction."""

    def __init__(self, indexer: Indexer) -> None:
        self._indexer = indexer

    async def handle(self, msgs: list[Msg]) -> None:
        decoded: list[tuple[Msg, Message]] = []
        for msg in msgs:
            event: Message = (
                events_pb2.EmbedCompleted()
                if msg.subject == subjects.EMBED_COMPLETED
                else events_pb2.EmbedFailed()
            )
            try:
                event.ParseFromString(msg.data)
            except DecodeError:
                log.error("event.undecodable", subject=msg.subject)
                await msg.term()
                continue
            decoded.append((msg, event))
        if not decoded:
            return
        try:
            await self._apply([event for _, event in decoded])
        except Exception as exc:
            # Find the message at fault: redo them one by one, each its own transaction.
            log.warning("results.batch_failed", size=len(decoded), error=str(exc))
            for msg, event in decoded:
                await self._one(msg, event)
            return
        for msg, _ in decoded:
            await msg.ack()

    async def _one(self, msg: Msg, event: Message) -> None:
        _bind_request_id(msg)
        try:
            await self._apply([event])
        except Exception as exc:
            delay = retry_delay(msg)
            log.warning("results.retry", subject=msg.subject, error=str(exc), retry_in_s=delay)
            await msg.nak(delay=delay)
            return
        await msg.ack()

    async def _apply(self, events: list[Message]) -> None:
        completed = [e for e in events if isinstance(e, events_pb2.EmbedCompleted)]
        failed = [e for e in events if isinstance(e, events_pb2.EmbedFailed)]
        await self._indexer.embed_results(completed, failed)


def event_consumers(infra: Infra, indexer: Indexer) -> list[Consumer]:
    """One consumer per stream search reads, both feeding the indexer."""
    catalog = CatalogEvents(indexer).handle
    results = EmbedResults(indexer).handle
    return [
        Consumer(infra, subjects.CATALOG_STREAM, CATALOG_CONSUMER, catalog, batch=100),
        Consumer(infra, subjects.EMBED_RESULTS_STREAM, RESULTS_CONSUMER, results, batch=64),
    ]
