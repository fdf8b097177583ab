"""The outbox relay: publishes committed catalog events to JetStream, in order.

One replica relays at a time (a session advisory lock; the others stand by and
take over when its connection goes). Rows are read in id order, published one at
a time, and deleted only after JetStream acknowledged them. The message id
"<catalog instance>:<outbox id>" lets JetStream drop the copy a crash between
ack and delete would re-send. While NATS is away the rows wait, then go out in
the same order. A NOTIFY from the committing transaction wakes the relay at once;
a short poll covers a missed notification."""

import asyncio
from dataclasses import dataclass, field

import psycopg
import structlog
from nats.aio.client import Client
from nats.js import JetStreamContext
from psycopg.rows import TupleRow

from photosearch.common import nats as nats_helpers
from photosearch.common.logging import get_logger
from photosearch.common.periodic import sleep_unless
from photosearch_catalog.metrics import CatalogMetrics
from photosearch_catalog.outbox import OUTBOX_CHANNEL, OUTBOX_RELAY_LOCK

log = get_logger(__name__)


class _RawPayload:
    """Already-serialised protobuf bytes, in the shape `nats_helpers.publish` expects."""

    def __init__(self, payload: bytes) -> None:
        self._payload = payload

    def SerializeToString(self) -> bytes:
        return self._payload


@dataclass(frozen=True)
class RelayOptions:
    stream_replicas: int = 1
    # How often the leader re-checks without a notification and a standby tries to
    # take over, and the rows read per round.
    poll_seconds: float = 1.0
    standby_seconds: float = 2.0
    batch_size: int = 200


@dataclass
class OutboxRelay:
    database_url: str
    nats_url: str
    options: RelayOptions = field(default_factory=RelayOptions)
    metrics: CatalogMetrics = field(default_factory=CatalogMetrics)
    published: int = field(default=0, init=False)
    leading: bool = field(default=False, init=False)
    _stopping: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    _task: asyncio.Task[None] | None = field(default=None, init=False)
    _nc: Client | None = field(default=None, init=False)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self, timeout: float = 3.0) -> None:
        self._stopping.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout)
            except TimeoutError:  # e.g. still waiting for a NATS that never came
                self._task.cancel()
                try:
                    await self._task
                except asyncio.CancelledError:
                    pass
            self._task = None
        if self._nc is not None:
            await nats_helpers.drain(self._nc)
            self._nc = None

    async def _pause(self, seconds: float) -> None:
        await sleep_unless(self._stopping, seconds)

    async def _run(self) -> None:
        delay = 0.2
        while not self._stopping.is_set():
            try:
                async with await psycopg.AsyncConnection.connect(
                    self.database_url, autocommit=True
                ) as conn:
                    delay = 0.2
                    await self._lead(conn)
            except Exception as exc:  # Postgres away: the lock went with the connection
                log.warning("outbox.relay.database_error", error=str(exc), retry_in_s=delay)
            self.leading = False
            self.metrics.leading.set(0)
            await self._pause(delay)
            delay = min(delay * 2, 5.0)

    async def _lead(self, conn: psycopg.AsyncConnection[TupleRow]) -> None:
        while not self._stopping.is_set():
            cur = await conn.execute("SELECT pg_try_advisory_lock(%s)", (OUTBOX_RELAY_LOCK,))
            row = await cur.fetchone()
            if row and row[0]:
                break
            await self._pause(self.options.standby_seconds)
        else:
            return
        self.leading = True
        self.metrics.leading.set(1)
        log.info("outbox.relay.leading")
        await conn.execute(f"LISTEN {OUTBOX_CHANNEL}")
        cur = await conn.execute("SELECT id::text FROM catalog_instance")
        instance = str((await cur.fetchone() or ("",))[0])
        js = await self._jetstream()
        if js is None:
            return
        delay = 0.2
        while not self._stopping.is_set():
            cur = await conn.execute(
                "SELECT id, subject, payload, request_id FROM outbox ORDER BY id LIMIT %s",
                (self.options.batch_size,),
            )
            rows = await cur.fetchall()
            sent = await self._publish(conn, js, instance, rows)
            if sent < len(rows):  # NATS refused: keep the order, retry the same row
                await self._pause(delay)
                delay = min(delay * 2, 5.0)
                await self._ensure_streams(js)
                continue
            delay = 0.2
            if len(rows) < self.options.batch_size:
                # Runs to its end (no break): it holds the connection's lock until then.
                async for _ in conn.notifies(timeout=self.options.poll_seconds, stop_after=1):
                    pass

    async def _publish(
        self,
        conn: psycopg.AsyncConnection[TupleRow],
        js: JetStreamContext,
        instance: str,
        rows: list[TupleRow],
    ) -> int:
        """Publish rows in order until one fails; delete the acknowledged ones."""
        acked: list[int] = []
        try:
            for outbox_id, subject, payload, request_id in rows:
                if self._nc is None or not self._nc.is_connected:
                    log.warning("outbox.relay.nats_unavailable", waiting=len(rows) - len(acked))
                    self.metrics.publish_failures.inc()
                    break
                with structlog.contextvars.bound_contextvars(request_id=request_id):
                    await nats_helpers.publish(
                        js,
                        subject,
                        _RawPayload(bytes(payload)),  # type: ignore[arg-type]
                        msg_id=f"{instance}:{outbox_id}",
                    )
                acked.append(outbox_id)
        except Exception as exc:
            log.warning(
                "outbox.relay.publish_failed", error=repr(exc), waiting=len(rows) - len(acked)
            )
            self.metrics.publish_failures.inc()
        if acked:
            await conn.execute("DELETE FROM outbox WHERE id = ANY(%s)", (acked,))
            self.published += len(acked)
            self.metrics.published.inc(len(acked))
        return len(acked)

    async def _jetstream(self) -> JetStreamContext | None:
        """Connect to NATS (waiting as long as it takes) and declare the streams."""
        if self._nc is None:
            # Retries on its own until the server answers (and reconnects forever after).
            self._nc = await nats_helpers.connect(self.nats_url, "catalog-outbox-relay")
        js = self._nc.jetstream()
        delay = 0.2
        while not self._stopping.is_set():
            try:
                await nats_helpers.ensure_streams(js, self._topology())
                return js
            except Exception as exc:
                log.warning("outbox.relay.streams_failed", error=str(exc), retry_in_s=delay)
                await self._pause(delay)
                delay = min(delay * 2, 5.0)
        return None

    def _topology(self) -> nats_helpers.Topology:
        return nats_helpers.Topology(self.options.stream_replicas)

    async def _ensure_streams(self, js: JetStreamContext) -> None:
        """A NATS that came back empty has no CATALOG stream: declare it again."""
        try:
            await nats_helpers.ensure_streams(js, self._topology())
        except Exception as exc:
            log.debug("outbox.relay.ensure_streams_failed", error=str(exc))
