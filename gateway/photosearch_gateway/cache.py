"""A value read from another service and reused for a few seconds, so hot
paths (every search checks the settings and the active model) do not add a
round trip each. Writes through the gateway invalidate it at once."""

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Cached(Generic[T]):
    def __init__(self, load: Callable[[], Awaitable[T]], ttl_seconds: float) -> None:
        self._load = load
        self._ttl = ttl_seconds
        self._value: T | None = None
        self._expires = 0.0
        self._lock = asyncio.Lock()

    async def get(self) -> T:
        if self._value is not None and time.monotonic() < self._expires:
            return self._value
        async with self._lock:  # one caller loads; the others wait for its answer
            if self._value is not None and time.monotonic() < self._expires:
                return self._value
            value = await self._load()
            self._value, self._expires = value, time.monotonic() + self._ttl
            return value

    def put(self, value: T) -> None:
        self._value, self._expires = value, time.monotonic() + self._ttl

    def invalidate(self) -> None:
        self._expires = 0.0
