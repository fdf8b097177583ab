"""The heartbeat keeps a live worker listed even when one put to NATS hangs, and stops in
bounded time even when a NATS call swallows its cancellation (as a request can)."""

import asyncio
import time

import pytest

from photosearch.events.v1 import events_pb2
from photosearch_embedder import heartbeat as heartbeat_module
from photosearch_embedder.heartbeat import Heartbeat


class StallingBucket:
    """A KV bucket whose `stall`-th put never returns, and which ignores the first
    cancellation while stalled when `stubborn`."""

    def __init__(self, stall: int, stubborn: bool = False) -> None:
        self.stall, self.stubborn = stall, stubborn
        self.puts: list[float] = []
        self.deleted: list[str] = []
        self.stalled = asyncio.Event()

    async def put(self, key: str, value: bytes) -> None:
        self.puts.append(time.monotonic())
        if len(self.puts) == self.stall:
            self.stalled.set()
            swallow = self.stubborn
            while True:
                try:
                    await asyncio.sleep(3600)
                except asyncio.CancelledError:
                    if not swallow:
                        raise
                    swallow = False

    async def delete(self, key: str) -> None:
        self.deleted.append(key)


def beat() -> events_pb2.WorkerHeartbeat:
    return events_pb2.WorkerHeartbeat(worker_id="w-1", model_id="m@1", capabilities=["embed"])


async def started(monkeypatch: pytest.MonkeyPatch, bucket: StallingBucket) -> Heartbeat:
    async def kv(*args: object) -> StallingBucket:
        return bucket

    monkeypatch.setattr(heartbeat_module, "ensure_kv", kv)
    heartbeat = Heartbeat(None, beat, interval=0.05, ttl=1.0)  # type: ignore[arg-type]
    await heartbeat.start()
    return heartbeat


async def test_a_hanging_put_does_not_stop_the_beats(monkeypatch: pytest.MonkeyPatch) -> None:
    bucket = StallingBucket(stall=2)
    heartbeat = await started(monkeypatch, bucket)
    await asyncio.sleep(1.0)
    # The second put hung; the beats after it went on within the bucket's TTL of 1 s.
    assert len(bucket.puts) >= 5
    gaps = [b - a for a, b in zip(bucket.puts, bucket.puts[1:], strict=False)]
    assert max(gaps) < 1.0
    await heartbeat.stop()
    assert bucket.deleted == ["w-1"]


async def test_stopping_is_bounded_when_a_call_swallows_the_cancellation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bucket = StallingBucket(stall=2, stubborn=True)
    heartbeat = await started(monkeypatch, bucket)
    await bucket.stalled.wait()
    begun = time.monotonic()
    await heartbeat.stop()
    assert time.monotonic() - begun < 3.0
    assert bucket.deleted == ["w-1"]
