"""Wiring only: build the gRPC server and the lifecycle of the search service."""

from photosearch.common.grpc_server import GrpcServer, create_server
from photosearch.common.infra import Infra
from photosearch.search.v1 import search_pb2_grpc
from photosearch_search.config import SearchSettings
from photosearch_search.servicer import SearchServicer

SERVICE_NAME = "photosearch.search.v1.SearchService"


async def build_server(settings: SearchSettings) -> tuple[GrpcServer, Infra]:
    infra = Infra(
        "search",
        database_url=settings.database_url,
        migrations_package="photosearch_search.migrations",
        pool_min=settings.database_pool_min,
        pool_max=settings.database_pool_max,
        vector=True,
        nats_url=settings.nats_url,
        stream_replicas=settings.nats_stream_replicas,
    )
    server = await create_server(settings.grpc_address, [SERVICE_NAME], settings.tls_dir)
    search_pb2_grpc.add_SearchServiceServicer_to_server(SearchServicer(), server.server)  # type: ignore[abstract]
    return server, infra
