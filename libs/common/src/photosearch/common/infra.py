"""The dependencies a service holds (Postgres pool, NATS + JetStream), with one
place that opens them, reports whether they answer, and closes them."""

import asyncio
from dataclasses import dataclass, field

from nats.aio.client import Client
from nats.js import JetStreamContext
from psycopg_pool import AsyncConnectionPool

from photosearch.common import db
from photosearch.common import nats as nats_helpers
from photosearch.common.logging import get_logger

log = get_logger(__name__)


@dataclass
class Infra:
    service: str
    database_url: str | None = None
    migrations_package: str | None = None
    vector: bool = False
    pool_min: int = 1
    pool_max: int = 10
    nats_url: str | None = None
    stream_replicas: int = 1
    pool: AsyncConnectionPool | None = field(default=None, init=False)
    nc: Client | None = field(default=None, init=False)
    js: JetStreamContext | None = field(default=None, init=False)

    async def start(self) -> None:
        """Idempotent: a retried start keeps what already connected."""
        if self.database_url and self.pool is None:
            if self.migrations_package:
                await db.apply_migrations(self.database_url, self.migrations_package)
            self.pool = await db.open_pool(
                self.database_url,
                min_size=self.pool_min,
                max_size=self.pool_max,
                vector=self.vector,
            )
        if self.nats_url and self.nc is None:
            nc = await nats_helpers.connect(self.nats_url, self.service)
            js = nc.jetstream()
            await nats_helpers.ensure_streams(js, nats_helpers.Topology(self.stream_replicas))
            self.nc, self.js = nc, js

    def require_pool(self) -> AsyncConnectionPool:
        if self.pool is None:
            raise RuntimeError("database pool used before start()")
        return self.pool

    def require_js(self) -> JetStreamContext:
        if self.js is None:
            raise RuntimeError("JetStream used before start()")
        return self.js

    async def database_ok(self) -> bool:
        if self.pool is None:
            return self.database_url is None
        try:
            async with self.pool.connection(timeout=1.0) as conn:
                await conn.execute("SELECT 1")
            return True
        except Exception:
            return False

    def nats_ok(self) -> bool:
        if self.nc is None:
            return self.nats_url is None
        return bool(self.nc.is_connected)

    async def ready(self) -> bool:
        return self.nats_ok() and await self.database_ok()

    async def stop(self) -> None:
        if self.nc is not None:
            await nats_helpers.drain(self.nc)
        if self.pool is not None:
            await asyncio.wait_for(self.pool.close(), 10)
