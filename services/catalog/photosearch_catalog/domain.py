"""The catalog's domain objects: items, their images, admin settings."""

import enum
from dataclasses import dataclass, field
from datetime import datetime


class ImageRole(enum.IntEnum):
    # Values match catalog.v1.ImageRole and the images.role column.
    OFFICIAL = 1
    UPLOADED = 2


@dataclass(frozen=True)
class CopyHash:
    """An image's perceptual hashes (copy_hash.py): its canonical hash and its views'."""

    views: bytes  # hashes of HASH_BYTES each, canonical first
    quality: int  # PDQ's 0-100 confidence in the canonical hash
    version: int
    features: bytes  # copy_features.pack: what the pixel check compares


@dataclass(frozen=True)
class StoredCopyHash:
    image_id: str
    item_id: str
    quality: int
    views: bytes
    features: bytes


@dataclass(frozen=True)
class CopyPair:
    """Two images of different items that are the same picture: their PDQ hashes matched
    (found_by "hash"), or their pixels did once aligned (found_by "pixels")."""

    item_id_a: str
    image_id_a: str
    item_id_b: str
    image_id_b: str
    distance: int  # bits between a's matching view and b's canonical hash
    view: str  # which view of a matched: "as is", "mirrored", "centre 90 %", ...
    quality_a: int
    quality_b: int
    hash_a: bytes  # canonical hashes
    hash_b: bytes
    found_by: str = "hash"
    similarity: float = 0.0  # the pixels' correlation (found_by "pixels" only)


@dataclass(frozen=True)
class CopyReport:
    pairs: list[CopyPair]
    max_distance: int
    images: int  # images hashed and compared
    unhashed: int  # images the copy hasher has not hashed yet (not compared)
    unchecked: int = 0  # candidate pairs the pixel check had no time left for


@dataclass(frozen=True)
class ExternalRef:
    system: str
    ref: str
    url: str = ""


@dataclass(frozen=True)
class ItemFields:
    """What a person or an import says about an item (everything but ids and times)."""

    name: str
    series: str = ""
    maker: str = ""
    year: int = 0
    variant: str = ""
    tags: tuple[str, ...] = ()
    attributes: dict[str, str] = field(default_factory=dict)
    external_refs: tuple[ExternalRef, ...] = ()


# Field names an update mask may name.
ITEM_FIELD_NAMES = (
    "name",
    "series",
    "maker",
    "year",
    "variant",
    "tags",
    "attributes",
    "external_refs",
)


@dataclass(frozen=True)
class Item:
    id: str
    fields: ItemFields
    import_key: str
    created_at: datetime
    updated_at: datetime
    image_count: int = 0  # approved images
    cover_image_id: str = ""
    pending: bool = False  # waiting for review
    added_by: str = ""


@dataclass(frozen=True)
class Image:
    id: str
    item_id: str
    role: ImageRole
    sha256: str
    width: int
    height: int
    format: str
    size_bytes: int
    filename: str
    created_at: datetime
    pending: bool = False
    added_by: str = ""


@dataclass(frozen=True)
class Contributor:
    """Who a write comes from, and whether it waits for review."""

    added_by: str = ""
    pending: bool = False


APPROVED = Contributor()


@dataclass(frozen=True)
class Contribution:
    """An item waiting for review, or with images that are."""

    item: Item
    pending_images: list[Image]


@dataclass(frozen=True)
class ImageRef:
    image_id: str
    item_id: str


@dataclass(frozen=True)
class ItemFilter:
    query: str = ""
    series: str = ""
    maker: str = ""
    tag: str = ""


@dataclass(frozen=True)
class ItemPage:
    items: list[Item]
    next_page_token: str


@dataclass(frozen=True)
class NewImage:
    """An image that passed validation, ready to be stored."""

    data: bytes
    sha256: str
    role: ImageRole
    width: int
    height: int
    format: str
    filename: str


@dataclass(frozen=True)
class AdminSettings:
    photo_search_enabled: bool
    web_fallback_enabled: bool
    vision_api_key_set: bool


@dataclass(frozen=True)
class ImportImage:
    data: bytes
    filename: str
    role: ImageRole


@dataclass(frozen=True)
class ImportRecord:
    import_key: str
    fields: ItemFields
    images: list[ImportImage]
    # Existing items keep what they have unless the import says to overwrite.
    update_existing: bool = False


@dataclass(frozen=True)
class ImportFailure:
    import_key: str
    filename: str
    message: str


@dataclass
class ImportSummary:
    items_created: int = 0
    items_existing: int = 0
    images_added: int = 0
    images_existing: int = 0
    errors: list[ImportFailure] = field(default_factory=list)

    def add(self, other: "ImportSummary") -> None:
        self.items_created += other.items_created
        self.items_existing += other.items_existing
        self.images_added += other.images_added
        self.images_existing += other.images_existing
        self.errors.extend(other.errors)


@dataclass(frozen=True)
class ImportEntry:
    import_key: str
    location: str  # "https://..." or "s3://bucket/key"
    fields: ItemFields


@dataclass(frozen=True)
class EntryFailure:
    location: str
    reason: str


@dataclass
class ImportJob:
    id: str
    source: str
    state: str  # running, done
    started_by: str
    created_at: datetime
    finished_at: datetime | None
    total: int = 0
    done: int = 0
    failed: int = 0
    # The first few (import_jobs.FAILURES_SHOWN).
    failures: list[EntryFailure] = field(default_factory=list)


@dataclass(frozen=True)
class ClaimedEntry:
    """An entry a runner is importing now (its row is locked until it records how it went)."""

    job_id: str
    position: int
    entry: ImportEntry
    update_existing: bool
