"""What the catalog service runs around its gRPC server: Postgres, which serving
depends on, and the outbox relay, which publishes the committed events to NATS."""

from dataclasses import dataclass

from photosearch.common.infra import Infra
from photosearch_catalog.relay import OutboxRelay


@dataclass
class CatalogLifecycle:
    """Ready means Postgres answers: NATS may come and go, as events wait in the
    outbox, so the catalog keeps serving without it."""

    infra: Infra
    relay: OutboxRelay

    async def start(self) -> None:
        await self.infra.start()
        self.relay.start()

    async def ready(self) -> bool:
        return await self.infra.database_ok()

    async def stop(self) -> None:
        await self.relay.stop()
        await self.infra.stop()
