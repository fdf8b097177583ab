"""The JSON shapes of the public API (items, images, search, config, fallback).
Admin shapes live in admin_schemas. Conversions from protobuf live beside the
shapes they build, so routes stay thin."""

from datetime import UTC, datetime
from typing import Annotated, Literal

from google.protobuf.timestamp_pb2 import Timestamp
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from photosearch.catalog.v1 import catalog_pb2 as catalog_pb
from photosearch.fallback.v1 import fallback_pb2 as fallback_pb
from photosearch.search.v1 import search_pb2 as search_pb
from photosearch_gateway.local_query import MAX_LOCAL_VIEWS, LocalView

THUMBNAIL_SIZES = (128, 256, 512, 1024)
DEFAULT_THUMBNAIL = 256
Text = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]
Tag = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
# Fingerprint values: finite and far inside float32's range (the vector travels as float32).
VectorValue = Annotated[float, Field(allow_inf_nan=False, ge=-1e6, le=1e6)]


class Strict(BaseModel):
    """Request bodies refuse unknown fields, so a typo is an error and not a silent no-op."""

    model_config = ConfigDict(extra="forbid")


def image_url(image_id: str) -> str:
    return f"/api/v1/images/{image_id}"


def thumbnail_url(image_id: str, size: int = DEFAULT_THUMBNAIL) -> str:
    return f"/api/v1/images/{image_id}/thumbnail?size={size}"


def utc_time(ts: Timestamp) -> datetime | None:
    """In UTC with its offset: the document's `date-time` is RFC 3339, which needs one."""
    return ts.ToDatetime(tzinfo=UTC) if ts.seconds or ts.nanos else None


# --- items and images -----------------------------------------------------------------------


class ExternalRef(Strict):
    system: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
    ref: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] = ""
    url: Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)] = ""


class ItemCreate(Strict):
    """A new catalog item (manual entry). Only the name is required."""

    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    series: Text = ""
    maker: Text = ""
    year: int | None = Field(default=None, ge=1, le=9999)
    variant: Text = ""
    tags: list[Tag] = Field(default_factory=list, max_length=50)
    attributes: dict[Tag, Text] = Field(default_factory=dict, max_length=50)
    external_refs: list[ExternalRef] = Field(default_factory=list, max_length=20)

    def to_proto(self) -> catalog_pb.Item:
        return catalog_pb.Item(
            name=self.name,
            series=self.series,
            maker=self.maker,
            year=self.year or 0,
            variant=self.variant,
            tags=self.tags,
            attributes=self.attributes,
            external_refs=[
                catalog_pb.ExternalRef(system=r.system, ref=r.ref, url=r.url)
                for r in self.external_refs
            ],
        )


class ItemSummary(BaseModel):
    id: str
    name: str
    series: str
    maker: str
    year: int | None
    variant: str

    @classmethod
    def from_proto(cls, item: catalog_pb.Item) -> "ItemSummary":
        return cls(
            id=item.id,
            name=item.name,
            series=item.series,
            maker=item.maker,
            year=item.year or None,
            variant=item.variant,
        )

    @classmethod
    def from_search(cls, item_id: str, item: search_pb.ItemSummary) -> "ItemSummary":
        """From a search answer, which carries what search heard in catalog's item events."""
        return cls(
            id=item_id,
            name=item.name,
            series=item.series,
            maker=item.maker,
            year=item.year or None,
            variant=item.variant,
        )


class Item(ItemSummary):
    tags: list[str]
    attributes: dict[str, str]
    external_refs: list[ExternalRef]
    image_count: int
    cover_image_id: str | None
    cover_thumbnail_url: str | None
    created_at: datetime | None
    updated_at: datetime | None
    pending: bool = Field(
        default=False, description="Waiting for an admin's review: not listed, not searchable."
    )

    @classmethod
    def from_proto(cls, item: catalog_pb.Item) -> "Item":
        cover = item.cover_image_id or None
        return cls(
            **ItemSummary.from_proto(item).model_dump(),
            tags=list(item.tags),
            attributes=dict(item.attributes),
            external_refs=[
                ExternalRef(system=r.system or "unknown", ref=r.ref, url=r.url)
                for r in item.external_refs
            ],
            image_count=item.image_count,
            cover_image_id=cover,
            cover_thumbnail_url=thumbnail_url(cover) if cover else None,
            created_at=utc_time(item.created_at),
            updated_at=utc_time(item.updated_at),
            pending=item.pending,
        )


class ItemPage(BaseModel):
    items: list[Item]
    next_page_token: str | None = Field(description="Pass as page_token for the next page.")


ImageRole = Literal["official", "uploaded", "unspecified"]
_ROLE_NAMES: dict[int, ImageRole] = {
    catalog_pb.IMAGE_ROLE_OFFICIAL: "official",
    catalog_pb.IMAGE_ROLE_UPLOADED: "uploaded",
}


class Image(BaseModel):
    id: str
    item_id: str
    role: ImageRole
    sha256: str
    width: int
    height: int
    format: str
    size_bytes: int
    created_at: datetime | None
    url: str
    thumbnail_url: str
    pending: bool = Field(
        default=False, description="Waiting for an admin's review: not searchable yet."
    )

    @classmethod
    def from_proto(cls, image: catalog_pb.Image) -> "Image":
        return cls(
            id=image.id,
            item_id=image.item_id,
            role=_ROLE_NAMES.get(image.role, "unspecified"),
            sha256=image.sha256,
            width=image.width,
            height=image.height,
            format=image.format,
            size_bytes=image.size_bytes,
            created_at=utc_time(image.created_at),
            url=image_url(image.id),
            thumbnail_url=thumbnail_url(image.id),
            pending=image.pending,
        )


class ImageList(BaseModel):
    images: list[Image]


class ImageAdded(BaseModel):
    image: Image
    created: bool = Field(description="False when the same bytes were already on this item.")


# --- search ---------------------------------------------------------------------------------


class SearchFilters(Strict):
    series: list[Tag] = Field(default_factory=list, max_length=20)
    makers: list[Tag] = Field(default_factory=list, max_length=20)
    tags: list[Tag] = Field(default_factory=list, max_length=20, description="All must match.")


class SearchQuery(Strict):
    """A fingerprint computed on the device, and optionally the photo's local descriptors
    (one int8 vector per region) to re-rank the best candidates. Photos are refused:
    only descriptors are sent."""

    model_id: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    vector: list[VectorValue] = Field(min_length=1, max_length=4096)
    k: int = Field(default=10, ge=1, le=100)
    filters: SearchFilters = Field(default_factory=SearchFilters)
    min_score: float = Field(default=0.0, ge=-1.0, le=1.0)
    local: list[LocalView] = Field(
        default_factory=list,
        max_length=MAX_LOCAL_VIEWS,
        description="Local descriptors of the photo as taken first, then of the photo turned "
        "(the page sends 90 and 270 degrees clockwise). When given, search re-ranks its best "
        "candidates by regions that match under one geometric mapping.",
    )

    @field_validator("vector")
    @classmethod
    def not_all_zero(cls, vector: list[float]) -> list[float]:
        if not any(vector):
            raise ValueError("the fingerprint is all zeros; compute it from a photo")
        return vector


class Candidate(BaseModel):
    item: ItemSummary
    image_id: str = Field(description="The item's best-matching image.")
    score: float = Field(
        description="What candidates are ranked by, best first: the fingerprint similarity, "
        "plus weight x verification when re-ranked (above 1 for a verified candidate)."
    )
    global_score: float = Field(description="Cosine similarity of the fingerprint alone.")
    inliers: int = Field(
        description="Regions of the photo that match this image under one geometric mapping "
        "(0 when not re-ranked or nothing matched; a few can match by chance)."
    )
    verification: float = Field(
        default=0.0,
        description="How far this candidate's matched regions stand above the query's chance "
        "level (the best other candidate's), on a log scale; 0 = not at all.",
    )
    verified: bool = Field(
        description="Geometric verification separates this candidate from the rest at the match "
        "band's precision: the badge to show."
    )
    from_regions: bool = Field(
        default=False,
        description="Found by the region index (shared visual words), not among the fingerprint's "
        "nearest items.",
    )
    thumbnail_url: str


class SearchResult(BaseModel):
    model_id: str
    candidates: list[Candidate]
    exact: bool = Field(description="Filters were so selective that every vector was compared.")
    reranked: bool = Field(description="The candidates were re-ranked with the local descriptors.")
    turned_views_wanted: bool = Field(
        default=False,
        description="Only the photo as taken was sent (one local view) and it verified no "
        "candidate well: search would match turned views too, so send them now (the same view "
        "first) and use that answer instead.",
    )
    band: Literal["match", "possible", "no_match"] = Field(
        default="no_match",
        description="How much the answer can be trusted: `match` (the top candidate is the item; "
        "precision >= 0.98 on held-out items), `possible` (look through the candidates), "
        "`no_match` (nothing in the catalog is close: offer to add the item by hand).",
    )


# --- config ---------------------------------------------------------------------------------


class LocalModelAsset(BaseModel):
    """The local-descriptor graph (preprocess.json's `local` section says how to run it)."""

    onnx_url: str
    onnx_sha256: str
    onnx_integrity: str = Field(description="Subresource-integrity value of the ONNX file.")
    onnx_bytes: int
    salient_cells: int = Field(
        description="Send at most this many cells per view: the most salient (search keeps "
        "no more), with their indices in `cells`."
    )


class ModelAsset(BaseModel):
    """What the page needs to compute fingerprints (and local descriptors) itself."""

    model_id: str
    dim: int
    onnx_url: str
    onnx_sha256: str
    onnx_integrity: str = Field(description="Subresource-integrity value of the ONNX file.")
    onnx_bytes: int
    preprocess_url: str
    preprocess: dict[str, object]
    local: LocalModelAsset | None = Field(
        description="Present when the model exports local descriptors for re-ranking."
    )


class PublicConfig(BaseModel):
    photo_search_enabled: bool
    photo_search_available: bool = Field(
        description="Enabled, and the active model's files can be downloaded."
    )
    unavailable_reason: str | None
    unavailable_code: str | None = Field(
        default=None,
        description="Why, as a stable code a page can translate: photo_search_off, "
        "no_active_model, model_not_exported, model_unreadable.",
    )
    model: ModelAsset | None
    web_fallback_available: bool = Field(
        description="Turned on and a Google Vision key is set: the page may offer it."
    )
    ort_base_url: str
    max_upload_bytes: int
    sign_in: "SignInConfig | None" = Field(
        default=None,
        description="The identity provider the page signs contributors in with (authorization "
        "code with PKCE; POST /api/v1/auth/token redeems the code); null: tokens are pasted.",
    )


class SignInConfig(BaseModel):
    authorization_endpoint: str
    client_id: str
    scope: str


class TokenExchange(Strict):
    """The code the identity provider sent the page back with, and the PKCE verifier."""

    code: Annotated[str, StringConstraints(min_length=1, max_length=4096)]
    code_verifier: Annotated[
        str, StringConstraints(min_length=43, max_length=128, pattern=r"^[A-Za-z0-9._~-]+$")
    ]
    redirect_uri: Annotated[str, StringConstraints(max_length=2000, pattern=r"^https?://[^\s]+$")]


class SignedIn(BaseModel):
    access_token: str = Field(description="Send it as 'Authorization: Bearer' to write.")
    expires_in: int = Field(description="Seconds, as the provider said (0: not said).")
    name: str
    roles: list[str]


# --- web fallback ---------------------------------------------------------------------------


class WebLead(BaseModel):
    label: str
    url: str
    title: str
    score: float
    image_url: str = Field(description="For a page: the matching image on it.")


class WebLeads(BaseModel):
    best_guess: str | None = Field(description="Pre-fills the manual entry's name.")
    best_guess_labels: list[str]
    entities: list[WebLead]
    full_matching_images: list[WebLead]
    partial_matching_images: list[WebLead]
    pages: list[WebLead]
    visually_similar_images: list[WebLead]

    @classmethod
    def from_proto(cls, reply: fallback_pb.WebDetectResponse) -> "WebLeads":
        groups: dict[int, list[WebLead]] = {}
        for lead in reply.leads:
            groups.setdefault(lead.type, []).append(
                WebLead(
                    label=lead.label,
                    url=lead.url,
                    title=lead.title,
                    score=lead.score,
                    image_url=lead.image_url,
                )
            )
        labels = list(reply.best_guess_labels) or [
            lead.label for lead in groups.get(fallback_pb.LEAD_TYPE_BEST_GUESS, [])
        ]
        return cls(
            best_guess=labels[0] if labels else None,
            best_guess_labels=labels,
            entities=groups.get(fallback_pb.LEAD_TYPE_WEB_ENTITY, []),
            full_matching_images=groups.get(fallback_pb.LEAD_TYPE_FULL_MATCHING_IMAGE, []),
            partial_matching_images=groups.get(fallback_pb.LEAD_TYPE_PARTIAL_MATCHING_IMAGE, []),
            pages=groups.get(fallback_pb.LEAD_TYPE_PAGE_WITH_MATCHING_IMAGE, []),
            visually_similar_images=groups.get(fallback_pb.LEAD_TYPE_VISUALLY_SIMILAR_IMAGE, []),
        )


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    ready: bool
    services: dict[str, str]
