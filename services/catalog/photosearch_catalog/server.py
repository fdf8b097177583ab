"""Wiring only: build the gRPC server and the lifecycle of the catalog service."""

from photosearch.catalog.v1 import catalog_pb2_grpc
from photosearch.common.grpc_server import GrpcServer, create_server
from photosearch.common.infra import Infra
from photosearch_catalog.admin_settings import AdminSettingsService
from photosearch_catalog.bulk_import import ImportService
from photosearch_catalog.config import CatalogSettings
from photosearch_catalog.intake import ThumbnailCache
from photosearch_catalog.lifecycle import CatalogLifecycle
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
    relay = OutboxRelay(settings.database_url, settings.nats_url, settings.relay_options())
    limits = settings.image_limits()
    catalog = CatalogService(
        infra.require_pool,
        PostgresImageStore(infra.require_pool),
        limits,
        ThumbnailCache(limits, settings.thumbnail_cache_bytes),
    )
    servicer = CatalogServicer(
        catalog, ImportService(catalog), AdminSettingsService(catalog.pool, settings.cipher())
    )
    server = await create_server(settings.grpc_address, [SERVICE_NAME], settings.tls_dir)
    catalog_pb2_grpc.add_CatalogServiceServicer_to_server(servicer, server.server)  # type: ignore[no-untyped-call]
    return server, CatalogLifecycle(infra, relay)
