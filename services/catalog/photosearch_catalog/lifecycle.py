"""What the catalog service runs around its gRPC server: Postgres, which serving
depends on, the outbox relay, which publishes the committed events to NATS, and the
copy hasher and the import jobs' runner."""

import asyncio
from dataclasses import dataclass, field

from photosearch.common.infra import Infra
from photosearch_catalog.copy_hasher import CopyHasher
from photosearch_catalog.import_runner import ImportRunner
from photosearch_catalog.metrics import OutboxGauges
from photosearch_catalog.relay import OutboxRelay


@dataclass
class CatalogLifecycle:
    """Ready means Postgres answers: NATS may come and go, as events wait in the
    outbox, so the catalog keeps serving without it."""

    infra: Infra
    relay: OutboxRelay
    gauges: OutboxGauges
    hasher: CopyHasher
    runner: ImportRunner
    sample_seconds: float = 15.0
    _stopping: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    _sampler: asyncio.Task[None] | None = field(default=None, init=False)
    _hasher: asyncio.Task[None] | None = field(default=None, init=False)
    _runner: asyncio.Task[None] | None = field(default=None, init=False)

    async def start(self) -> None:
        await self.infra.start()
        self.relay.start()
        self._sampler = asyncio.create_task(
            self.gauges.run(self._stopping, self.sample_seconds), name="outbox-gauges"
        )
        self._hasher = asyncio.create_task(self.hasher.run(self._stopping), name="copy-hasher")
        self._runner = asyncio.create_task(self.runner.run(self._stopping), name="import-jobs")

    async def ready(self) -> bool:
        return await self.infra.database_ok()

    async def stop(self) -> None:
        self._stopping.set()
        for task in (self._sampler, self._hasher, self._runner):
            if task is not None:
                await task
        await self.relay.stop()
        await self.infra.stop()
