"""Wiring only: build the gRPC server and the lifecycle of the catalog service."""

from collections.abc import Callable

from photosearch.catalog.v1 import catalog_pb2_grpc
from photosearch.common.grpc_server import GrpcServer, create_server
from photosearch.common.infra import Infra
from photosearch.common.metrics import ServiceMetrics
from photosearch_catalog.admin_settings import AdminSettingsService
from photosearch_catalog.bulk_import import ImportService
from photosearch_catalog.config import CatalogSettings
from photosearch_catalog.copy_hasher import CopyHasher
from photosearch_catalog.import_fetch import S3Store
from photosearch_catalog.import_jobs import ImportJobService
from photosearch_catalog.import_runner import ImportRunner
from photosearch_catalog.intake import ThumbnailCache
from photosearch_catalog.lifecycle import CatalogLifecycle
from photosearch_catalog.metrics import CatalogMetrics, OutboxGauges
from photosearch_catalog.relay import OutboxRelay
from photosearch_catalog.service import CatalogService
from photosearch_catalog.servicer import CatalogServicer
from photosearch_catalog.storage import PostgresImageStore

SERVICE_NAME = "photosearch.catalog.v1.CatalogService"


async def build_server(settings: CatalogSettings) -> tuple[GrpcServer, CatalogLifecycle]:
    infra = Infra(
        "catalog",
        database_url=settings.database_url,
        migrations_package="photosearch_catalog.migrations",
        pool_min=settings.database_pool_min,
        pool_max=settings.database_pool_max,
    )
    service_metrics = ServiceMetrics(SERVICE_NAME)
    metrics = CatalogMetrics(service_metrics.registry)
    relay = OutboxRelay(settings.database_url, settings.nats_url, settings.relay_options(), metrics)
    limits = settings.image_limits()
    store = PostgresImageStore(infra.require_pool)
    hasher = CopyHasher(infra.require_pool, store, limits, settings.copy_hash_recheck_seconds)
    catalog = CatalogService(
        infra.require_pool,
        store,
        limits,
        ThumbnailCache(limits, settings.thumbnail_cache_bytes),
        on_stored=hasher.want,
    )
    imports = ImportService(catalog, metrics)
    s3 = lazy_s3(settings.s3_endpoint_url)
    runner = ImportRunner(
        catalog.pool, imports, s3, settings.fetch_limits(), batch=settings.import_concurrency
    )
    jobs = ImportJobService(catalog.pool, s3, on_started=runner.wake)
    servicer = CatalogServicer(
        catalog, imports, AdminSettingsService(catalog.pool, settings.cipher()), jobs
    )
    server = await create_server(
        settings.grpc_address, [SERVICE_NAME], settings.tls_dir, service_metrics
    )
    catalog_pb2_grpc.add_CatalogServiceServicer_to_server(servicer, server.server)  # type: ignore[no-untyped-call]
    gauges = OutboxGauges(infra.require_pool, metrics)
    return server, CatalogLifecycle(
        infra, relay, gauges, hasher, runner, settings.metrics_sample_seconds
    )


def lazy_s3(endpoint_url: str) -> Callable[[], S3Store]:
    """The S3 client, made on first use (most catalogs never import from S3)."""
    made: list[S3Store] = []

    def get() -> S3Store:
        if not made:
            made.append(S3Store(endpoint_url))
        return made[0]

    return get
