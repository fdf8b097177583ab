"""A value read from another service and reused for a few seconds, so hot
paths (every search checks the settings and the active model) do not add a
round trip each. Writes through the gateway invalidate it at once. A value may also be
kept serving for a while after it expired, when the service behind it is unreachable:
searches then go on with the last settings seen instead of failing with catalog."""

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import structlog

from photosearch_gateway.errors import ApiError

T = TypeVar("T")
log = structlog.get_logger(__name__)
# What an unreachable or hung service answers through the gateway's clients.
UNREACHABLE = (503, 504)


class Cached(Generic[T]):
    """Concurrent callers share the one load in flight, its failure included: with the
    service behind it hung, every waiting request fails at the same deadline instead of
    each loading again after the one before it (k requests waiting k deadlines)."""

    def __init__(
        self, load: Callable[[], Awaitable[T]], ttl_seconds: float, stale_seconds: float = 0.0
    ) -> None:
        self._load = load
        self._ttl = ttl_seconds
        # How long past its expiry the last value still serves while the load fails
        # because the service is unreachable (0: never).
        self._stale = stale_seconds
        self._value: T | None = None
        self._expires = 0.0
        self._fresh_until = 0.0  # the expiry of the last value actually loaded
        self._loading: asyncio.Future[T] | None = None
        # Bumped by put() and invalidate(): a load started before a write stores nothing.
        self._generation = 0

    async def get(self) -> T:
        if self._value is not None and time.monotonic() < self._expires:
            return self._value
        if self._loading is None:
            self._loading = asyncio.ensure_future(self._load_and_keep(self._generation))
            self._loading.add_done_callback(self._loaded)
        # A caller that goes away (client disconnected) does not cancel the others' load.
        return await asyncio.shield(self._loading)

    async def _load_and_keep(self, generation: int) -> T:
        try:
            value = await self._load()
        except ApiError as exc:
            last = self._value
            if (
                exc.status not in UNREACHABLE
                or last is None
                or generation != self._generation
                or time.monotonic() > self._fresh_until + self._stale
            ):
                raise
            # Tried again once per ttl, not by every caller (each would wait a deadline
            # while the service hangs).
            self._expires = time.monotonic() + self._ttl
            log.warning("cache.serving_stale", reason=str(exc))
            return last
        if generation == self._generation:
            self._value, self._expires = value, time.monotonic() + self._ttl
            self._fresh_until = self._expires
        return value

    def _loaded(self, load: "asyncio.Future[T]") -> None:
        if self._loading is load:
            self._loading = None
        if not load.cancelled():
            load.exception()  # retrieved here too, in case every caller went away

    def put(self, value: T) -> None:
        self._generation += 1
        self._loading = None
        self._value, self._expires = value, time.monotonic() + self._ttl
        self._fresh_until = self._expires

    def invalidate(self) -> None:
        self._generation += 1
        self._loading = None  # the next caller reads anew, not what was loading meanwhile
        self._expires = 0.0
