"""Which embedders are online: live entries of the heartbeat KV bucket."""

import asyncio

from google.protobuf.message import DecodeError
from nats.js.kv import KeyValue

from photosearch.common import subjects
from photosearch.common.errors import Unavailable
from photosearch.common.infra import Infra
from photosearch.common.logging import get_logger
from photosearch.common.nats import ensure_kv
from photosearch_search.domain import WorkerHeartbeat

log = get_logger(__name__)

EMBED_CAPABILITY = "embed"


class WorkerDirectory:
    def __init__(self, infra: Infra, ttl: float, read_timeout: float = 3.0) -> None:
        self._infra = infra
        self._ttl = ttl
        self._timeout = read_timeout
        self._kv: KeyValue | None = None
        # The last answer of `online()`, for the event path (which must not wait on KV).
        self.last_seen: list[WorkerHeartbeat] = []

    async def bucket(self) -> KeyValue:
        if self._kv is None:
            self._kv = await ensure_kv(
                self._infra.require_js(),
                subjects.WORKERS_BUCKET,
                ttl=self._ttl,
                replicas=self._infra.stream_replicas,
            )
        return self._kv

    async def online(self) -> list[WorkerHeartbeat]:
        """Embed-capable workers with a live (unexpired, undeleted) heartbeat."""
        try:
            entries = await asyncio.wait_for(self._read_all(), self._timeout)
        except Exception as exc:
            raise Unavailable(f"cannot read the worker heartbeats from NATS: {exc}") from exc
        workers = []
        for key, value in entries:
            heartbeat = WorkerHeartbeat()
            try:
                heartbeat.ParseFromString(value)
            except DecodeError:
                log.warning("worker.bad_heartbeat", key=key)
                continue
            if EMBED_CAPABILITY in heartbeat.capabilities and heartbeat.model_id:
                workers.append(heartbeat)
        workers.sort(key=lambda w: (w.model_id, w.worker_id))
        self.last_seen = workers
        return workers

    async def _read_all(self) -> list[tuple[str, bytes]]:
        kv = await self.bucket()
        watcher = await kv.watchall(ignore_deletes=True)
        entries: list[tuple[str, bytes]] = []
        try:
            async for entry in watcher:
                if entry is None:  # the end of what is stored now
                    break
                # An expiry marker may surface as an entry without a value: not live.
                if entry.value:
                    entries.append((entry.key, entry.value))
        finally:
            await watcher.stop()  # type: ignore[no-untyped-call]
        return entries

    @staticmethod
    def for_model(workers: list[WorkerHeartbeat], model_id: str) -> list[WorkerHeartbeat]:
        return [w for w in workers if w.model_id == model_id]
