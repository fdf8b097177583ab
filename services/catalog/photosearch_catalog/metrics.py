"""Prometheus figures of one catalog replica: what imports brought in, what the outbox
relay published or failed to publish, and (sampled in the background) how many events
wait in the outbox and for how long: the lag between a write and what search sees."""

import asyncio
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge
from psycopg_pool import AsyncConnectionPool

from photosearch.common.periodic import repeat
from photosearch_catalog.domain import ImportSummary


class CatalogMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.imports = Counter(
            "catalog_imports", "ImportItems streams answered.", registry=self.registry
        )
        self.import_items = Counter(
            "catalog_import_items",
            "Items an import sent, by outcome (created, existing).",
            ["outcome"],
            registry=self.registry,
        )
        self.import_images = Counter(
            "catalog_import_images",
            "Photos an import sent, by outcome (added, existing, refused).",
            ["outcome"],
            registry=self.registry,
        )
        self.published = Counter(
            "catalog_outbox_published",
            "Events the outbox relay published to JetStream (and deleted from the outbox).",
            registry=self.registry,
        )
        self.publish_failures = Counter(
            "catalog_outbox_publish_failures",
            "Relay rounds stopped by NATS being away or refusing an event (retried).",
            registry=self.registry,
        )
        self.leading = Gauge(
            "catalog_outbox_relay_leading",
            "1 while this replica is the one relaying the outbox (the others stand by).",
            registry=self.registry,
        )
        self.pending = Gauge(
            "catalog_outbox_pending",
            "Committed events waiting in the outbox to be published.",
            registry=self.registry,
        )
        self.oldest = Gauge(
            "catalog_outbox_oldest_seconds",
            "Age of the oldest event waiting in the outbox (0: none waits).",
            registry=self.registry,
        )

    def imported(self, summary: ImportSummary) -> None:
        self.import_items.labels("created").inc(summary.items_created)
        self.import_items.labels("existing").inc(summary.items_existing)
        self.import_images.labels("added").inc(summary.images_added)
        self.import_images.labels("existing").inc(summary.images_existing)
        self.import_images.labels("refused").inc(len(summary.errors))


class OutboxGauges:
    """Reads the outbox's depth and age every few seconds: a scrape never waits on Postgres."""

    def __init__(self, pool: Callable[[], AsyncConnectionPool], metrics: CatalogMetrics) -> None:
        self._pool = pool
        self._metrics = metrics

    async def sample(self) -> None:
        async with self._pool().connection() as conn:
            cur = await conn.execute(
                "SELECT count(*),"
                " coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8 FROM outbox"
            )
            row = await cur.fetchone()
        assert row is not None
        self._metrics.pending.set(int(row[0]))
        self._metrics.oldest.set(float(row[1]))

    async def run(self, stopping: asyncio.Event, seconds: float) -> None:
        await repeat(self.sample, seconds, stopping, failed="metrics.sample_failed")
