"""Wiring only: build the gRPC server and the lifecycle of the search service."""

from photosearch.common import subjects
from photosearch.common.channels import open_channel
from photosearch.common.grpc_server import GrpcServer, create_server
from photosearch.common.infra import Infra
from photosearch.search.v1 import search_pb2_grpc
from photosearch_search.catalog import GrpcCatalog
from photosearch_search.config import SearchSettings
from photosearch_search.ef_search import EfSearchPolicy
from photosearch_search.events import (
    CATALOG_CONSUMER,
    RESULTS_CONSUMER,
    CatalogEvents,
    Consumer,
    EmbedResults,
)
from photosearch_search.indexer import Indexer
from photosearch_search.jobs import EmbedJobQueue
from photosearch_search.lifecycle import SearchLifecycle
from photosearch_search.local_search import LocalSearch
from photosearch_search.local_store import LocalDescriptorReader
from photosearch_search.models import IndexParams, ModelRegistry
from photosearch_search.queries import ScanSettings, VectorQueries
from photosearch_search.rebuild import Rebuilder
from photosearch_search.rerank import RerankSettings
from photosearch_search.service import SearchLimits, SearchService
from photosearch_search.servicer import SearchServicer
from photosearch_search.workers import WorkerDirectory

SERVICE_NAME = "photosearch.search.v1.SearchService"


def index_params(settings: SearchSettings) -> IndexParams:
    return IndexParams(
        m=settings.hnsw_m,
        ef_construction=settings.hnsw_ef_construction,
        build_memory=settings.index_build_memory,
        parallel_workers=settings.index_build_parallel_workers,
    )


async def build_server(settings: SearchSettings) -> tuple[GrpcServer, SearchLifecycle]:
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
    registry = ModelRegistry(infra, index_params(settings))
    workers = WorkerDirectory(infra, ttl=settings.workers_ttl_seconds)
    queue = EmbedJobQueue(infra)
    catalog_channel = open_channel(settings.catalog_addr, settings.tls_dir)
    catalog = GrpcCatalog(catalog_channel, settings.catalog_timeout_seconds)
    rebuilder = Rebuilder(
        infra,
        catalog,
        registry,
        queue,
        workers,
        batch_size=settings.rebuild_batch_size,
        wait_seconds=settings.rebuild_wait_seconds,
    )
    vectors = VectorQueries(
        ScanSettings(
            EfSearchPolicy(settings.hnsw_ef_search, settings.hnsw_ef_search_per_million),
            settings.hnsw_max_scan_tuples,
        ),
        settings.search_pool_size,
    )
    local_search = LocalSearch(
        vectors,
        LocalDescriptorReader(settings.rerank_photos_per_item),
        RerankSettings(top_k=settings.rerank_top_k),
        settings.rerank_threads,
    )
    service = SearchService(
        infra,
        registry,
        vectors,
        catalog,
        queue,
        workers,
        rebuilder,
        SearchLimits(
            max_k=settings.max_k,
            exact_max_rows=settings.exact_search_max_rows,
            max_scan_rows=settings.hnsw_max_scan_tuples,
            duplicate_threshold=settings.duplicate_threshold,
            duplicate_exact_max=settings.duplicate_exact_max_images,
            duplicate_timeout=settings.duplicate_report_timeout_seconds,
        ),
        local_search,
    )
    indexer = Indexer(infra, registry, queue, workers)
    catalog_events = Consumer(
        infra,
        subjects.CATALOG_STREAM,
        CATALOG_CONSUMER,
        CatalogEvents(indexer).handle,
        batch=100,
    )
    results = Consumer(
        infra,
        subjects.EMBED_RESULTS_STREAM,
        RESULTS_CONSUMER,
        EmbedResults(indexer).handle,
        batch=64,
    )
    lifecycle = SearchLifecycle(
        infra,
        registry,
        workers,
        rebuilder,
        vectors,
        [catalog_events.run, results.run],
        catalog_channel,
        default_model_id=settings.default_model_id,
        poll_seconds=settings.workers_poll_seconds,
        on_stop=[local_search.close],
    )
    server = await create_server(settings.grpc_address, [SERVICE_NAME], settings.tls_dir)
    search_pb2_grpc.add_SearchServiceServicer_to_server(SearchServicer(service), server.server)  # type: ignore[no-untyped-call]
    return server, lifecycle
