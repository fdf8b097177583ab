"""Settings of the search service (environment variables prefixed SEARCH_)."""

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from photosearch.common.settings import DatabaseSettings, NatsSettings, ServiceSettings
from photosearch_search.bands import BandSettings
from photosearch_search.codebook import CodebookRule
from photosearch_search.domain import SearchLimits
from photosearch_search.duplicates import DuplicateSettings
from photosearch_search.ef_search import EfSearchPolicy
from photosearch_search.models import IndexParams
from photosearch_search.nearest import ScanSettings
from photosearch_search.region_index import RegionSettings
from photosearch_search.rerank import RerankSettings

# Photos matched per re-ranked search at most: the matcher holds views x 250 x photos x 250
# float32 similarities (~60 MB per view at 240 photos).
MAX_RERANK_PHOTOS = 240


class SearchSettings(NatsSettings, DatabaseSettings, ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SEARCH_")

    grpc_port: int = 50052
    catalog_addr: str = "127.0.0.1:50051"
    # Seconds a call to catalog may take (a rebuild's walk reads one batch per call).
    catalog_timeout_seconds: float = Field(default=10.0, gt=0)

    # The model queries use until an admin picks one. Empty: adopt the model of the
    # first embed-capable worker that comes online.
    default_model_id: str = ""

    # HNSW graph parameters (docs/benchmarks/search.md has the measurements behind them).
    hnsw_m: int = Field(default=16, ge=2, le=100)
    hnsw_ef_construction: int = Field(default=64, ge=4, le=1000)
    # 64: recall@10 0.996 on 100k clustered vectors where 40 gave 0.972. The least a
    # search uses: larger indexes get more (ef_search.py).
    hnsw_ef_search: int = Field(default=64, ge=1, le=1000)
    # ef_search at a million vectors, growing with the square root of the index size:
    # 200 gave recall@10 0.95 at 1M where 64 gave 0.74. 0: always hnsw_ef_search.
    hnsw_ef_search_per_million: int = Field(default=200, ge=0, le=1000)
    # Upper bound of index rows one iterative scan visits before giving up.
    hnsw_max_scan_tuples: int = Field(default=20000, ge=100)
    # Postgres maintenance_work_mem for index builds: 1 GB builds 100k vectors ~4x
    # faster than the 64 MB default.
    index_build_memory: str = "1GB"
    index_build_parallel_workers: int = Field(default=1, ge=0, le=16)

    # Connections reserved for searches (the rest of the service uses the main pool).
    search_pool_size: int = Field(default=8, ge=1, le=100)
    max_k: int = Field(default=100, ge=1, le=1000)
    # Filters that leave at most this many vectors are answered by comparing them all.
    exact_search_max_rows: int = Field(default=20000, ge=0)

    # Duplicate report: pairs of different items at least this similar (cosine). 0.50
    # catches every near-duplicate copy of the real photos (the near-duplicate set and the
    # robustness suite's 1,462 copies) with the offline colour-fused EfficientNet-Lite0
    # (lowest: 0.507, a 90° turn); docs/benchmarks/search.md has the measurement.
    duplicate_threshold: float = Field(default=0.50, gt=0, le=1)
    # Up to this many images the report compares every pair (10,000: a few seconds);
    # above, each image's HNSW neighbours.
    duplicate_exact_max_images: int = Field(default=10000, ge=0)
    duplicate_report_timeout_seconds: float = Field(default=300.0, gt=0)

    # Re-ranking by local descriptors (searches that send the query's own): the
    # fingerprint's nearest items that are matched, at most this many photos of each,
    # in this many worker threads (one search each; one BLAS thread each, see
    # __main__); (top_k + region_candidates) x photos_per_item is at most
    # MAX_RERANK_PHOTOS. The scoring rule's numbers (rerank.py) and the bands'
    # (bands.py) were chosen on held-out items of every dataset (docs/quality.md).
    rerank_top_k: int = Field(default=RerankSettings.top_k, ge=1, le=100)
    rerank_photos_per_item: int = Field(default=3, ge=1, le=10)
    rerank_threads: int = Field(default=2, ge=1, le=32)
    rerank_weight: float = Field(default=RerankSettings.weight, ge=0, le=10)
    rerank_margin: float = Field(default=RerankSettings.margin, ge=0, le=10)
    rerank_min_inliers: int = Field(default=RerankSettings.min_inliers, ge=0, le=250)
    band_verified_above: float = Field(default=BandSettings.verified_above, ge=0)
    band_match_margin: float = Field(default=BandSettings.match_margin, ge=0)
    band_possible_above: float = Field(default=BandSettings.possible_above, ge=-1)

    # The region index (region_index.py): items it adds to the fingerprint's per search
    # (0: off), photos a model needs before its first codebook, growth that trains a
    # new one, the codebook's size rule, and how often it is kept up to date.
    region_candidates: int = Field(default=RegionSettings.candidates, ge=0, le=100)
    region_min_photos: int = Field(default=RegionSettings.min_photos, ge=1)
    region_retrain_growth: float = Field(default=RegionSettings.retrain_growth, gt=1)
    region_cells_per_word: float = Field(default=CodebookRule.cells_per_word, gt=0)
    region_max_words: int = Field(default=CodebookRule.max_words, ge=16, le=65536)
    region_poll_seconds: float = Field(default=5.0, gt=0)
    # Memory (MiB, all models together) for the ready codebooks' postings, so that a
    # search's word query runs in memory instead of SQL (held_postings.py; 8 bytes per
    # posting, ~200 postings per photo: 64 MiB holds ~40,000 photos). 0: always SQL.
    region_memory_mib: int = Field(default=64, ge=0, le=65536)
    # How often the index figures of /metrics (pending, failed, indexed, workers) are read.
    metrics_sample_seconds: float = Field(default=15.0, gt=0)
    # Seconds between two passes that fill in, from catalog, the names of items search
    # heard of before it kept them (summaries.py).
    summary_backfill_seconds: float = Field(default=300.0, gt=0)

    @model_validator(mode="after")
    def _rerank_photos_bounded(self) -> "SearchSettings":
        photos = (self.rerank_top_k + self.region_candidates) * self.rerank_photos_per_item
        if photos > MAX_RERANK_PHOTOS:
            raise ValueError(
                "(SEARCH_RERANK_TOP_K + SEARCH_REGION_CANDIDATES) x "
                f"SEARCH_RERANK_PHOTOS_PER_ITEM is {photos}; at most "
                f"{MAX_RERANK_PHOTOS} photos are matched per search (memory grows with it)"
            )
        return self

    rebuild_batch_size: int = Field(default=500, ge=1, le=10000)
    # How long Rebuild waits for the catalog walk before answering "in progress".
    rebuild_wait_seconds: float = Field(default=5.0, ge=0)

    # Worker heartbeats: entries in the KV bucket expire after this many seconds.
    workers_ttl_seconds: float = Field(default=10.0, gt=0)
    workers_poll_seconds: float = Field(default=2.0, gt=0)

    def index_params(self) -> IndexParams:
        return IndexParams(
            m=self.hnsw_m,
            ef_construction=self.hnsw_ef_construction,
            build_memory=self.index_build_memory,
            parallel_workers=self.index_build_parallel_workers,
        )

    def scan(self) -> ScanSettings:
        return ScanSettings(
            EfSearchPolicy(self.hnsw_ef_search, self.hnsw_ef_search_per_million),
            self.hnsw_max_scan_tuples,
        )

    def limits(self) -> SearchLimits:
        return SearchLimits(
            max_k=self.max_k,
            exact_max_rows=self.exact_search_max_rows,
            max_scan_rows=self.hnsw_max_scan_tuples,
        )

    def rerank(self) -> RerankSettings:
        return RerankSettings(
            top_k=self.rerank_top_k,
            weight=self.rerank_weight,
            margin=self.rerank_margin,
            min_inliers=self.rerank_min_inliers,
        )

    def bands(self) -> BandSettings:
        return BandSettings(
            verified_above=self.band_verified_above,
            match_margin=self.band_match_margin,
            possible_above=self.band_possible_above,
        )

    def regions(self) -> RegionSettings:
        return RegionSettings(
            candidates=self.region_candidates,
            min_photos=self.region_min_photos,
            retrain_growth=self.region_retrain_growth,
            rule=CodebookRule(
                cells_per_word=self.region_cells_per_word, max_words=self.region_max_words
            ),
        )

    def duplicates(self) -> DuplicateSettings:
        return DuplicateSettings(
            threshold=self.duplicate_threshold,
            exact_max_images=self.duplicate_exact_max_images,
            timeout=self.duplicate_report_timeout_seconds,
        )
