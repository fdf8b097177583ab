"""Whether the web fallback is on, and the Google Vision API key, read from catalog.

The key lives only in catalog (encrypted at rest). It is read over gRPC, kept in
memory for a few seconds at most, registered with the log redactor the moment it
arrives, and never logged or echoed in an error."""

import asyncio
import time
from dataclasses import dataclass, field
from typing import Protocol

import grpc

from photosearch.catalog.v1 import catalog_pb2, catalog_pb2_grpc
from photosearch.common.errors import Unavailable
from photosearch.common.logging import get_logger, redact

log = get_logger(__name__)


@dataclass(frozen=True)
class VisionCredentials:
    web_fallback_enabled: bool
    # repr=False: a stray debug print of this object must not show the key.
    api_key: str = field(default="", repr=False)


class CredentialsSource(Protocol):
    async def get(self) -> VisionCredentials:
        """The current flag and key; raises Unavailable when they cannot be read."""

    def invalidate(self) -> None:
        """Forget a cached value (e.g. after Google rejected the key)."""


class CatalogCredentials:
    """Reads `GetVisionCredentials` from catalog, cached for `ttl_seconds`."""

    def __init__(self, channel: grpc.aio.Channel, ttl_seconds: float, timeout: float) -> None:
        self._stub = catalog_pb2_grpc.CatalogServiceStub(channel)
        self._ttl = ttl_seconds
        self._timeout = timeout
        self._cached: VisionCredentials | None = None
        self._expires = 0.0
        self._lock = asyncio.Lock()

    async def get(self) -> VisionCredentials:
        if self._ttl <= 0:
            return await self._read()
        cached = self._fresh()
        if cached is not None:
            return cached
        async with self._lock:  # one read for a burst of concurrent calls
            cached = self._fresh()
            if cached is not None:
                return cached
            credentials = await self._read()
            self._cached, self._expires = credentials, time.monotonic() + self._ttl
            return credentials

    def _fresh(self) -> VisionCredentials | None:
        return self._cached if time.monotonic() < self._expires else None

    def invalidate(self) -> None:
        self._cached = None

    async def _read(self) -> VisionCredentials:
        try:
            reply = await self._stub.GetVisionCredentials(
                catalog_pb2.GetVisionCredentialsRequest(), timeout=self._timeout
            )
        except grpc.aio.AioRpcError as exc:
            log.warning("credentials.read_failed", code=exc.code().name)
            raise Unavailable(
                "cannot read the web fallback settings from catalog "
                f"({exc.code().name}: {exc.details()}); try again shortly"
            ) from None
        if reply.api_key:
            redact(reply.api_key)
        return VisionCredentials(reply.web_fallback_enabled, reply.api_key)
