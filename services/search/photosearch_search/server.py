"""Wiring only: build the gRPC server and the lifecycle of the search service."""

from photosearch.common.channels import open_channel
from photosearch.common.grpc_server import GrpcServer, create_server
from photosearch.common.infra import Infra
from photosearch.common.metrics import ServiceMetrics
from photosearch.search.v1 import search_pb2_grpc
from photosearch_search.catalog import GrpcCatalog
from photosearch_search.config import SearchSettings
from photosearch_search.consumers import event_consumers
from photosearch_search.held_postings import HeldPostings
from photosearch_search.index_admin import IndexAdmin
from photosearch_search.indexer import Indexer
from photosearch_search.jobs import EmbedJobQueue
from photosearch_search.lifecycle import SearchLifecycle
from photosearch_search.local_search import LocalSearch
from photosearch_search.local_store import LocalDescriptorReader
from photosearch_search.metrics import IndexGauges, SearchMetrics
from photosearch_search.models import ModelRegistry
from photosearch_search.nearest import NearestItems, VectorQueries
from photosearch_search.rebuild import Rebuilder
from photosearch_search.region_index import Codebooks, RegionIndex, RegionMaintainer
from photosearch_search.service import SearchService
from photosearch_search.servicer import SearchServicer
from photosearch_search.summaries import BACKFILL_BATCH, SummaryBackfill, SummaryReader
from photosearch_search.workers import WorkerDirectory

SERVICE_NAME = "photosearch.search.v1.SearchService"


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
    service_metrics = ServiceMetrics(SERVICE_NAME)
    metrics = SearchMetrics(service_metrics.registry)
    registry = ModelRegistry(infra, settings.index_params())
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
    vectors = VectorQueries(settings.scan(), settings.search_pool_size)
    nearest = NearestItems(vectors, settings.limits())
    reader = LocalDescriptorReader(settings.rerank_photos_per_item)
    codebooks = Codebooks(refresh=settings.region_poll_seconds)
    held = HeldPostings(infra.require_pool, settings.region_memory_mib * 2**20)
    regions = RegionIndex(codebooks, settings.regions(), held)
    maintainer = RegionMaintainer(infra.require_pool, codebooks, settings.regions())
    local = LocalSearch(
        vectors,
        nearest,
        reader,
        regions,
        settings.rerank(),
        settings.bands(),
        settings.rerank_threads,
    )
    search = SearchService(
        registry,
        nearest,
        local,
        settings.limits(),
        settings.bands(),
        SummaryReader(vectors),
        metrics,
    )
    backfill = SummaryBackfill(infra.require_pool, catalog, BACKFILL_BATCH)
    gauges = IndexGauges(infra, registry, workers, metrics, held)
    admin = IndexAdmin(infra, registry, catalog, queue, workers, rebuilder, settings.duplicates())
    consumers = event_consumers(infra, Indexer(infra, registry, queue, workers))
    lifecycle = SearchLifecycle(
        infra,
        registry,
        workers,
        rebuilder,
        vectors,
        [
            *(consumer.run for consumer in consumers),
            maintainer.every(registry, settings.region_poll_seconds),
            gauges.every(settings.metrics_sample_seconds),
            backfill.every(settings.summary_backfill_seconds),
        ],
        catalog_channel,
        default_model_id=settings.default_model_id,
        poll_seconds=settings.workers_poll_seconds,
        on_stop=[local.close],
    )
    server = await create_server(
        settings.grpc_address, [SERVICE_NAME], settings.tls_dir, service_metrics
    )
    servicer = SearchServicer(search, admin)
    search_pb2_grpc.add_SearchServiceServicer_to_server(servicer, server.server)  # type: ignore[no-untyped-call]
    return server, lifecycle
