"""NATS/JetStream helpers: connect with endless reconnects, declare streams,
consumers and KV buckets idempotently, pull batches from a durable consumer, publish
protobuf with request ids."""

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass

import nats
from google.protobuf.message import Message
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import NotFoundError
from nats.js.kv import KeyValue

from photosearch.common import subjects
from photosearch.common.context import current_request_id
from photosearch.common.logging import get_logger

log = get_logger(__name__)


async def connect(url: str, name: str) -> Client:
    """Connect once (raises if the server is not there yet); reconnect forever afterwards."""

    async def on_error(exc: Exception) -> None:
        log.warning("nats.error", error=str(exc))

    async def on_disconnect() -> None:
        log.warning("nats.disconnected")

    async def on_reconnect() -> None:
        log.info("nats.reconnected")

    return await nats.connect(
        servers=[url],
        name=name,
        connect_timeout=2,
        allow_reconnect=True,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,
        error_cb=on_error,
        disconnected_cb=on_disconnect,
        reconnected_cb=on_reconnect,
    )


@dataclass(frozen=True)
class Topology:
    replicas: int = 1

    def streams(self) -> list[StreamConfig]:
        return [
            StreamConfig(
                name=subjects.CATALOG_STREAM,
                subjects=subjects.CATALOG_SUBJECTS,
                retention=RetentionPolicy.LIMITS,
                max_age=14 * 24 * 3600,
                duplicate_window=600,
                storage=StorageType.FILE,
                num_replicas=self.replicas,
            ),
            StreamConfig(
                name=subjects.EMBED_JOBS_STREAM,
                subjects=subjects.EMBED_JOBS_SUBJECTS,
                retention=RetentionPolicy.WORK_QUEUE,
                duplicate_window=120,
                storage=StorageType.FILE,
                num_replicas=self.replicas,
            ),
            StreamConfig(
                name=subjects.EMBED_RESULTS_STREAM,
                subjects=subjects.EMBED_RESULTS_SUBJECTS,
                retention=RetentionPolicy.LIMITS,
                max_age=14 * 24 * 3600,
                duplicate_window=120,
                storage=StorageType.FILE,
                num_replicas=self.replicas,
            ),
        ]


async def ensure_streams(js: JetStreamContext, topology: Topology) -> None:
    """Create or update every stream (safe to call from every replica at start-up)."""
    for config in topology.streams():
        try:
            await js.stream_info(config.name or "")
            await js.update_stream(config)
        except NotFoundError:
            try:
                await js.add_stream(config)
            except Exception:  # another replica created it first
                await js.update_stream(config)


async def ensure_consumer(
    js: JetStreamContext,
    stream: str,
    durable: str,
    *,
    filter_subject: str | None = None,
    ack_wait: float = 30.0,
    max_deliver: int = -1,
    max_ack_pending: int = 1000,
) -> None:
    config = ConsumerConfig(
        durable_name=durable,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=ack_wait,
        max_deliver=max_deliver,
        max_ack_pending=max_ack_pending,
        filter_subject=filter_subject,
    )
    await js.add_consumer(stream, config)


async def bind_pull(
    js: JetStreamContext,
    stream: str,
    durable: str,
    *,
    filter_subject: str | None = None,
    ack_wait: float = 30.0,
) -> JetStreamContext.PullSubscription:
    """Declare the durable pull consumer (idempotent) and subscribe to it."""
    await ensure_consumer(js, stream, durable, filter_subject=filter_subject, ack_wait=ack_wait)
    return await js.pull_subscribe_bind(durable, stream)


async def pull_batches(
    sub: JetStreamContext.PullSubscription,
    batch: int,
    *,
    timeout: float,
    stopping: asyncio.Event,
    consumer: str,
    on_idle: Callable[[], Awaitable[None]] | None = None,
) -> AsyncGenerator[list[Msg], None]:
    """Batches of up to `batch` messages until `stopping` is set. A fetch that finds
    nothing calls `on_idle`; one that fails (NATS away: the client reconnects by
    itself) is logged with the `consumer`'s name and tried again a second later. The
    next batch is fetched only when the caller asks for it, so a caller may wait for
    room before asking."""
    while not stopping.is_set():
        try:
            msgs = await sub.fetch(batch, timeout=timeout)
        except TimeoutError:  # nats' TimeoutError is one too: nothing to fetch
            if on_idle is not None:
                await on_idle()
            continue
        except Exception as exc:
            log.warning("consumer.fetch_failed", consumer=consumer, error=str(exc) or repr(exc))
            await asyncio.sleep(1.0)
            continue
        yield msgs


async def ensure_kv(js: JetStreamContext, bucket: str, ttl: float, replicas: int = 1) -> KeyValue:
    try:
        return await js.key_value(bucket)
    except Exception:
        return await js.create_key_value(bucket=bucket, ttl=ttl, replicas=replicas, history=1)


def headers(msg_id: str | None = None) -> dict[str, str]:
    """Headers for an outgoing message: the request id and an optional de-dup id."""
    result: dict[str, str] = {}
    if rid := current_request_id():
        result[subjects.REQUEST_ID_HEADER] = rid
    if msg_id:
        result[subjects.MSG_ID_HEADER] = msg_id
    return result


async def publish(
    js: JetStreamContext,
    subject: str,
    message: Message,
    *,
    msg_id: str | None = None,
    timeout: float = 5.0,
) -> None:
    """Publish and wait for JetStream's ack (the message is stored once this returns)."""
    await js.publish(subject, message.SerializeToString(), timeout=timeout, headers=headers(msg_id))


async def drain(nc: Client, timeout: float = 5.0) -> None:
    if nc.is_closed:
        return
    try:
        await asyncio.wait_for(nc.drain(), timeout)
    except Exception:
        await nc.close()
