"""Wiring only: build the gRPC server and the lifecycle of the catalog service."""

from photosearch.catalog.v1 import catalog_pb2_grpc
from photosearch.common.grpc_server import GrpcServer, create_server
from photosearch.common.infra import Infra
from photosearch_catalog.config import CatalogSettings
from photosearch_catalog.servicer import CatalogServicer

SERVICE_NAME = "photosearch.catalog.v1.CatalogService"


async def build_server(settings: CatalogSettings) -> tuple[GrpcServer, Infra]:
    infra = Infra(
        "catalog",
        database_url=settings.database_url,
        migrations_package="photosearch_catalog.migrations",
        pool_min=settings.database_pool_min,
        pool_max=settings.database_pool_max,
        nats_url=settings.nats_url,
        stream_replicas=settings.nats_stream_replicas,
    )
    server = await create_server(settings.grpc_address, [SERVICE_NAME], settings.tls_dir)
    catalog_pb2_grpc.add_CatalogServiceServicer_to_server(CatalogServicer(), server.server)  # type: ignore[abstract]
    return server, infra
