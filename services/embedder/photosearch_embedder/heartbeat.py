"""Worker presence: one entry per live worker in the `embed_workers` KV bucket.

The bucket's entries expire (bucket TTL, ~10 s), so a worker that dies disappears
within seconds; a graceful shutdown deletes its entry at once. Search reads the
bucket to know whether an embed-capable worker (of which model) is online."""

import asyncio
import re
from collections.abc import Callable

from google.protobuf.timestamp_pb2 import Timestamp
from nats.js import JetStreamContext
from nats.js.kv import KeyValue

from photosearch.common import subjects
from photosearch.common.logging import get_logger
from photosearch.common.nats import ensure_kv
from photosearch.events.v1 import events_pb2

log = get_logger(__name__)
CAPABILITIES = ("embed",)
# Added when the model makes local descriptors (EmbedCompleted.local, Embed's local).
LOCAL_CAPABILITY = "local"
_KEY_UNSAFE = re.compile(r"[^-/_=.A-Za-z0-9]+")


def heartbeat_key(worker_id: str) -> str:
    """KV keys allow only a few characters; worker ids come from hostnames."""
    return _KEY_UNSAFE.sub("_", worker_id).strip(".") or "worker"


class Heartbeat:
    def __init__(
        self,
        js: JetStreamContext,
        describe: Callable[[], events_pb2.WorkerHeartbeat],
        *,
        interval: float = 3.0,
        ttl: float = 10.0,
        replicas: int = 1,
    ) -> None:
        self.js = js
        self.describe = describe
        self.interval = interval
        self.ttl = ttl
        self.replicas = replicas
        self._kv: KeyValue | None = None
        self._task: asyncio.Task[None] | None = None
        self._key = ""
        self._stopping = asyncio.Event()
        # A put that hangs (NATS slow or away) must not hold up the next beats: the entry
        # would lapse while the worker is live. Each beat gets at most this long.
        self.beat_timeout = max(min(interval, ttl / 3), 0.1)

    async def start(self) -> None:
        self._kv = await ensure_kv(self.js, subjects.WORKERS_BUCKET, self.ttl, self.replicas)
        await self.beat()
        self._task = asyncio.create_task(self._run(), name="heartbeat")

    async def beat(self) -> None:
        assert self._kv is not None
        state = self.describe()
        self._key = heartbeat_key(state.worker_id)
        await self._kv.put(self._key, state.SerializeToString())

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                await asyncio.wait_for(self._stopping.wait(), self.interval)
                return
            except TimeoutError:
                pass
            try:
                await asyncio.wait_for(self.beat(), self.beat_timeout)
            except Exception as exc:  # NATS away: keep trying; the entry may lapse meanwhile
                log.warning("heartbeat.failed", error=str(exc) or type(exc).__name__)

    async def stop(self) -> None:
        """Beats stop, then the entry is deleted; bounded in time even where a NATS call
        swallows the cancellation (the loop also checks the stop flag)."""
        self._stopping.set()
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait({self._task}, timeout=self.beat_timeout + 1)
            self._task = None
        if self._kv is not None and self._key:
            try:
                await asyncio.wait_for(self._kv.delete(self._key), self.beat_timeout + 1)
            except Exception as exc:  # it expires by itself within the bucket TTL
                log.warning("heartbeat.delete_failed", error=str(exc) or type(exc).__name__)


def heartbeat_message(
    *,
    worker_id: str,
    model_id: str,
    dim: int,
    device: str,
    batch_size: int,
    version: str,
    started_at: Timestamp,
    model_loaded: bool,
    local: bool = False,
    runtime: str = "",
    runtime_rate: float = 0.0,
) -> events_pb2.WorkerHeartbeat:
    return events_pb2.WorkerHeartbeat(
        worker_id=worker_id,
        capabilities=[*CAPABILITIES, *([LOCAL_CAPABILITY] if local else [])],
        model_id=model_id,
        dim=dim,
        device=device,
        batch_size=batch_size,
        version=version,
        started_at=started_at,
        model_loaded=model_loaded,
        runtime=runtime,
        runtime_rate=runtime_rate,
    )
