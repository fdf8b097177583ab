"""The gateway's short cache: concurrent callers share one load, its failure included, so a
hung service costs every waiting request one deadline, not one deadline each in turn."""

import asyncio

import pytest

from photosearch_gateway.cache import Cached
from photosearch_gateway.errors import ApiError


class Source:
    """A value behind a load that the test releases: each load waits for `release`."""

    def __init__(self) -> None:
        self.loads = 0
        self.release = asyncio.Event()
        self.failure: Exception | None = None
        self.value = "v1"

    async def load(self) -> str:
        self.loads += 1
        await self.release.wait()
        if self.failure is not None:
            raise self.failure
        return self.value


async def started() -> None:
    """Let every task created so far reach its await on the load."""
    for _ in range(5):
        await asyncio.sleep(0)


async def test_concurrent_callers_share_one_load() -> None:
    source = Source()
    cached = Cached(source.load, ttl_seconds=60)
    callers = [asyncio.create_task(cached.get()) for _ in range(10)]
    await started()
    source.release.set()
    assert await asyncio.gather(*callers) == ["v1"] * 10
    assert source.loads == 1
    assert await cached.get() == "v1" and source.loads == 1  # kept for the ttl


async def test_a_failed_load_fails_every_waiting_caller_once() -> None:
    source = Source()
    source.failure = ConnectionError("search did not answer in time")
    cached = Cached(source.load, ttl_seconds=60)
    callers = [asyncio.create_task(cached.get()) for _ in range(10)]
    await started()
    source.release.set()
    results = await asyncio.gather(*callers, return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results), results
    assert source.loads == 1  # nobody loaded again after the failure
    # The failure is not kept: the next caller tries again.
    source.failure = None
    assert await cached.get() == "v1" and source.loads == 2


async def test_a_caller_that_goes_away_does_not_cancel_the_others_load() -> None:
    source = Source()
    cached = Cached(source.load, ttl_seconds=60)
    first = asyncio.create_task(cached.get())
    second = asyncio.create_task(cached.get())
    await started()
    first.cancel()
    source.release.set()
    assert await second == "v1"
    with pytest.raises(asyncio.CancelledError):
        await first
    assert source.loads == 1


async def test_a_write_during_a_load_is_not_overwritten_by_the_older_value() -> None:
    source = Source()
    cached = Cached(source.load, ttl_seconds=60)
    before_write = asyncio.create_task(cached.get())
    await started()
    cached.put("v2")  # a write through the gateway while the load is in flight
    source.release.set()
    assert await before_write == "v1"  # what was read before the write
    assert await cached.get() == "v2"
    assert source.loads == 1


async def test_invalidate_makes_the_next_caller_read_anew() -> None:
    source = Source()
    source.release.set()
    cached = Cached(source.load, ttl_seconds=60)
    assert await cached.get() == "v1"
    source.value = "v2"
    cached.invalidate()
    assert await cached.get() == "v2" and source.loads == 2


async def test_while_the_service_is_unreachable_the_last_value_serves_a_while() -> None:
    calls = {"n": 0}
    answers: list[object] = ["v1", ApiError(503, "unavailable", "catalog is down")]

    async def load() -> str:
        calls["n"] += 1
        answer = answers[min(calls["n"] - 1, len(answers) - 1)]
        if isinstance(answer, Exception):
            raise answer
        return str(answer)

    cache: Cached[str] = Cached(load, ttl_seconds=0.01, stale_seconds=0.3)
    assert await cache.get() == "v1"
    await asyncio.sleep(0.05)  # expired: the load fails, the last value serves
    assert await cache.get() == "v1"
    assert calls["n"] == 2
    await asyncio.sleep(0.4)  # past the stale window: the failure is the answer
    with pytest.raises(ApiError):
        await cache.get()


async def test_other_failures_and_a_cold_cache_are_not_hidden() -> None:
    failure: list[Exception] = [ApiError(400, "bad", "a bad request")]

    async def load() -> str:
        if failure:
            raise failure[0]
        return "v1"

    cache: Cached[str] = Cached(load, ttl_seconds=0.01, stale_seconds=60)
    with pytest.raises(ApiError):  # nothing seen yet: nothing to serve
        await cache.get()
    failure.clear()
    assert await cache.get() == "v1"
    await asyncio.sleep(0.05)
    failure.append(ApiError(400, "bad", "a bad request"))
    with pytest.raises(ApiError):  # not an unreachable service: raised as it is
        await cache.get()
