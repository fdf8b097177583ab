"""What the search service talks about, free of gRPC and SQL."""

from dataclasses import dataclass, field
from enum import Enum

import numpy as np
import numpy.typing as npt

from photosearch.events.v1 import events_pb2

Vector = npt.NDArray[np.float32]
WorkerHeartbeat = events_pb2.WorkerHeartbeat

# The whole-image fingerprint every embedder produces; other variants are extra views.
GLOBAL_VARIANT = "global"


@dataclass(frozen=True)
class Model:
    model_id: str
    dim: int
    # Surrogate key that names the model's vector table (vectors_<number>).
    number: int

    @property
    def table(self) -> str:
        return f"vectors_{self.number}"


@dataclass(frozen=True)
class Filters:
    """Lower-cased attribute filters; an empty list means "any"."""

    series: tuple[str, ...] = ()
    makers: tuple[str, ...] = ()
    # An item matches when it carries all of these tags.
    tags: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.series or self.makers or self.tags)


@dataclass(frozen=True)
class SearchQuery:
    model: Model
    vector: Vector  # unit length, float32
    k: int
    filters: Filters = Filters()
    min_score: float = -1.0


@dataclass(frozen=True)
class SearchLimits:
    max_k: int
    # Filters that leave at most this many vectors are answered by comparing them all.
    exact_max_rows: int
    # The widest index scan a search asks for (rows), however few items it finds.
    max_scan_rows: int


@dataclass(frozen=True)
class ImageHit:
    """One stored vector near the query."""

    item_id: str
    image_id: str
    distance: float  # cosine distance, 1 - similarity


@dataclass(frozen=True)
class ItemSummary:
    """What a results page shows of an item, as catalog's item events spell it."""

    name: str
    series: str = ""
    maker: str = ""
    year: int = 0  # 0 = unknown
    variant: str = ""


@dataclass(frozen=True)
class Candidate:
    item_id: str
    image_id: str
    score: float
    # The fingerprint similarity alone (None: the same as score, nothing was re-ranked).
    global_score: float | None = None
    # Verified local matches (re-ranked candidates only).
    inliers: int = 0
    # How far the inliers stand above the query's chance level (rerank.py).
    verification: float = 0.0
    # Verification that separates right from wrong at the match band's precision.
    verified: bool = False
    # Found by the region index, not among the fingerprint's nearest items.
    from_regions: bool = False
    # None: search has not heard of the item from catalog yet (summaries.py).
    item: ItemSummary | None = None


class Band(Enum):
    """How much an answer can be trusted (bands.py)."""

    MATCH = "match"
    POSSIBLE = "possible"
    NO_MATCH = "no_match"


@dataclass(frozen=True)
class SearchResult:
    model_id: str
    candidates: list[Candidate]
    exact: bool = False
    reranked: bool = False
    # Only the upright view came, and it verified nothing well: turned views would count.
    turned_views_wanted: bool = False
    band: Band = Band.NO_MATCH
    # Candidates the region index added beyond the fingerprint's nearest items.
    region_candidates: int = 0
    # Candidates whose photos local matching compared with the query's.
    compared: int = 0
    # (stage, milliseconds) in order: "candidates", then "rerank" when it ran.
    timings: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class ImageRef:
    image_id: str
    item_id: str


@dataclass(frozen=True)
class EmbeddingIn:
    variant: str
    values: Vector


@dataclass(frozen=True)
class Failure:
    image_id: str
    item_id: str
    reason: str


@dataclass(frozen=True)
class ModelCoverage:
    model_id: str
    dim: int
    embedded: int
    failed: int
    active: bool


@dataclass
class IndexStatus:
    model_id: str
    active_model_id: str
    dim: int = 0
    catalog_images: int = 0
    embedded: int = 0
    pending: int = 0
    failed: int = 0
    failures: list[Failure] = field(default_factory=list)
    workers: list[WorkerHeartbeat] = field(default_factory=list)
    queue_depth: int = 0
    rebuild_in_progress: bool = False
    region_indexed: int = 0  # photos the region index serves
    region_words: int = 0


@dataclass(frozen=True)
class RebuildOutcome:
    model_id: str
    queued: int
    already_queued: int
    in_progress: bool


@dataclass(frozen=True)
class DuplicatePair:
    item_id_a: str
    image_id_a: str
    item_id_b: str
    image_id_b: str
    score: float


@dataclass(frozen=True)
class Confusable:
    item_id: str
    nearest_item_id: str
    nearest_score: float
    own_score: float

    @property
    def margin(self) -> float:
        return self.own_score - self.nearest_score


@dataclass(frozen=True)
class DuplicateReport:
    model_id: str
    threshold: float
    duplicates: list[DuplicatePair]
    confusables: list[Confusable]
    images: int
    exact: bool
