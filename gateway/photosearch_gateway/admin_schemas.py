"""The JSON shapes of the admin API."""

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field, SecretStr, StringConstraints, model_validator

from photosearch.catalog.v1 import catalog_pb2 as catalog_pb
from photosearch.embedder.v1 import embedder_pb2 as embedder_pb
from photosearch.events.v1 import events_pb2
from photosearch.search.v1 import search_pb2 as search_pb
from photosearch_gateway.duplicate_pairs import MergedPair, Signal
from photosearch_gateway.schemas import ItemSummary, Strict, thumbnail_url, utc_time

ModelId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class AdminSettings(BaseModel):
    photo_search_enabled: bool
    web_fallback_enabled: bool
    vision_api_key_set: bool = Field(description="The key itself is never returned.")
    web_fallback_available: bool = Field(description="Turned on and a key is set.")

    @classmethod
    def from_proto(cls, settings: catalog_pb.Settings) -> "AdminSettings":
        return cls(
            photo_search_enabled=settings.photo_search_enabled,
            web_fallback_enabled=settings.web_fallback_enabled,
            vision_api_key_set=settings.vision_api_key_set,
            web_fallback_available=settings.web_fallback_enabled and settings.vision_api_key_set,
        )


class AdminSettingsUpdate(Strict):
    """Fields left out stay as they are. The key is write-only."""

    photo_search_enabled: bool | None = None
    web_fallback_enabled: bool | None = None
    vision_api_key: SecretStr | None = Field(default=None, min_length=8, max_length=512)
    clear_vision_api_key: bool = False

    @model_validator(mode="after")
    def one_key_action(self) -> "AdminSettingsUpdate":
        if self.vision_api_key is not None and self.clear_vision_api_key:
            raise ValueError("give either vision_api_key or clear_vision_api_key, not both")
        if self.vision_api_key is not None and not self.vision_api_key.get_secret_value().strip():
            raise ValueError("vision_api_key is blank; use clear_vision_api_key to remove it")
        return self

    def to_proto(self) -> catalog_pb.UpdateSettingsRequest:
        request = catalog_pb.UpdateSettingsRequest(clear_vision_api_key=self.clear_vision_api_key)
        if self.photo_search_enabled is not None:
            request.photo_search_enabled = self.photo_search_enabled
        if self.web_fallback_enabled is not None:
            request.web_fallback_enabled = self.web_fallback_enabled
        if self.vision_api_key is not None:
            request.vision_api_key = self.vision_api_key.get_secret_value().strip()
        return request


class Worker(BaseModel):
    worker_id: str
    capabilities: list[str]
    model_id: str
    dim: int
    device: str
    batch_size: int
    version: str
    started_at: datetime | None
    model_loaded: bool
    runtime: str = Field(
        default="",
        description="Engine of the fingerprint graph on this worker, chosen by measurement on "
        'its host (EMBED_RUNTIME), e.g. "openvino int8".',
    )
    runtime_rate: float = Field(
        default=0.0, description="Images per second that engine measured there (0: not timed)."
    )

    @classmethod
    def from_proto(cls, beat: events_pb2.WorkerHeartbeat) -> "Worker":
        return cls(
            worker_id=beat.worker_id,
            capabilities=list(beat.capabilities),
            model_id=beat.model_id,
            dim=beat.dim,
            device=beat.device,
            batch_size=beat.batch_size,
            version=beat.version,
            started_at=utc_time(beat.started_at),
            model_loaded=beat.model_loaded,
            runtime=beat.runtime,
            runtime_rate=round(beat.runtime_rate, 1),
        )


class Failure(BaseModel):
    image_id: str
    item_id: str
    reason: str


class RebuildGate(BaseModel):
    allowed: bool
    reason: str | None = Field(description="Why a rebuild is refused right now.")


class RuntimeTrial(BaseModel):
    """One engine the embedder timed for one graph when it chose its runtime."""

    graph: str = Field(description='"fingerprint" or "local".')
    engine: str
    rate: float = Field(description="Images (or photos) per second; 0 = not timed.")
    min_cosine: float | None = Field(
        description="Lowest cosine to the fp32 graph on the calibration photos."
    )
    problem: str | None = Field(description="Why it cannot serve.")
    chosen: bool

    @classmethod
    def from_proto(cls, trial: embedder_pb.RuntimeTrial) -> "RuntimeTrial":
        return cls(
            graph=trial.graph,
            engine=trial.engine,
            rate=round(trial.rate, 1),
            min_cosine=trial.min_cosine if trial.HasField("min_cosine") else None,
            problem=trial.problem or None,
            chosen=trial.chosen,
        )


class EmbedderInfo(BaseModel):
    """What the embedder service says about its model (e.g. why a fallback model runs)."""

    reachable: bool
    model_id: str | None = None
    device: str | None = None
    quantization: str | None = None
    available: bool = False
    model_note: str | None = None
    runtime_setting: str | None = None
    runtime: str | None = Field(default=None, description="Engine of the fingerprint graph.")
    local_runtime: str | None = Field(default=None, description="Engine of the local graph.")
    runtime_cached: bool = Field(
        default=False, description="The choice was measured on an earlier start on this host."
    )
    runtime_trials: list[RuntimeTrial] = []


class IndexStatus(BaseModel):
    model_id: str
    active_model_id: str
    dim: int = Field(description="Dimension of the model's fingerprints (0 while unknown).")
    catalog_images: int
    embedded: int
    pending: int
    failed: int
    progress: float = Field(description="embedded / catalog_images (1.0 for an empty catalog).")
    failures: list[Failure]
    workers: list[Worker]
    queue_depth: int
    rebuild_in_progress: bool
    rebuild: RebuildGate
    embedder: EmbedderInfo

    @classmethod
    def from_proto(
        cls, status: search_pb.IndexStatusResponse, gate: RebuildGate, embedder: EmbedderInfo
    ) -> "IndexStatus":
        total = status.catalog_images
        return cls(
            model_id=status.model_id,
            active_model_id=status.active_model_id,
            dim=status.dim,
            catalog_images=total,
            embedded=status.embedded,
            pending=status.pending,
            failed=status.failed,
            progress=min(1.0, status.embedded / total) if total else 1.0,
            failures=[
                Failure(image_id=f.image_id, item_id=f.item_id, reason=f.reason)
                for f in status.failures
            ],
            workers=[Worker.from_proto(w) for w in status.workers],
            queue_depth=status.queue_depth,
            rebuild_in_progress=status.rebuild_in_progress,
            rebuild=gate,
            embedder=embedder,
        )


class RebuildRequest(Strict):
    model_id: ModelId | None = Field(default=None, description="Default: the active model.")
    retry_failed: bool = False


class RebuildAccepted(BaseModel):
    model_id: str
    queued: int = Field(description="Embed jobs queued (so far, while in_progress).")
    already_queued: int = Field(description="Images skipped: a job for them is waiting.")
    in_progress: bool = Field(description="The catalog walk goes on in the background.")


class Model(BaseModel):
    model_id: str
    dim: int
    embedded: int
    active: bool
    browser_ready: bool = Field(description="Its ONNX export can be served to browsers.")


class ModelList(BaseModel):
    active_model_id: str | None
    models: list[Model]


class ActiveModelChange(Strict):
    model_id: ModelId
    force: bool = Field(default=False, description="Switch before the catalog is fully covered.")


class ActiveModel(BaseModel):
    active_model_id: str


class ImageRef(BaseModel):
    item: ItemSummary | None
    item_id: str
    image_id: str
    thumbnail_url: str
    copy_hash: str | None = Field(
        default=None, description="The image's PDQ hash (64 hex digits) when hashes matched."
    )
    hash_quality: int | None = Field(
        default=None, description="PDQ's 0-100 confidence in that hash (below 50: flat)."
    )


class DuplicatePair(BaseModel):
    a: ImageRef
    b: ImageRef
    signals: list[Signal] = Field(
        description="What found the pair: the model's fingerprints (search), the images' "
        "perceptual hashes (catalog, copy_hash), their aligned pixels where the hashes "
        "missed (catalog, copy_pixels), or fingerprints and one of those."
    )
    score: float | None = Field(
        description="Fingerprint similarity; null when only the hashes found the pair."
    )
    hash_distance: int | None = Field(
        description="Bits (of 256) between a's matching view and b's PDQ hash (for "
        "copy_pixels: between the canonical hashes); null when only the fingerprints "
        "found the pair."
    )
    hash_view: str | None = Field(
        description="Which view of a matched b: as is, mirrored, turned 90, centre 90 %, "
        "...; for copy_pixels how the pixels were compared: as is, aligned by keypoints."
    )
    pixel_similarity: float | None = Field(
        default=None,
        description="Correlation (-1..1) of the two images' grey pixels once aligned; set "
        "for copy_pixels only.",
    )


class Confusable(BaseModel):
    item: ItemSummary | None
    item_id: str
    nearest: ItemSummary | None
    nearest_item_id: str
    nearest_score: float
    own_score: float
    margin: float


class DuplicateReport(BaseModel):
    model_id: str
    threshold: float
    images: int = Field(description="Images compared by fingerprint.")
    exact: bool = Field(description="Every pair was compared (else nearest neighbours).")
    hash_max_distance: int = Field(description="Bits of 256 within which hashes match.")
    hashed_images: int = Field(description="Images compared by perceptual hash.")
    unhashed_images: int = Field(
        description="Images still waiting to be hashed (stored before hashing existed)."
    )
    unchecked_copy_candidates: int = Field(
        default=0,
        description="Candidate pairs catalog's pixel check had no time left for (a very "
        "large catalog): copies among them are not listed.",
    )
    duplicates: list[DuplicatePair]
    confusables: list[Confusable]

    @classmethod
    def from_proto(
        cls,
        report: search_pb.DuplicateReportResponse,
        copies: catalog_pb.FindCopiesResponse,
        pairs: list[MergedPair],
        items: dict[str, ItemSummary],
    ) -> "DuplicateReport":
        def ref(item_id: str, image_id: str, hash_hex: str = "", quality: int = 0) -> ImageRef:
            return ImageRef(
                item=items.get(item_id),
                item_id=item_id,
                image_id=image_id,
                thumbnail_url=thumbnail_url(image_id, 128),
                copy_hash=hash_hex or None,
                hash_quality=quality if hash_hex else None,
            )

        def pair(p: MergedPair) -> DuplicatePair:
            c = p.copy
            return DuplicatePair(
                a=ref(p.item_id_a, p.image_id_a, *((c.hash_a, c.quality_a) if c else ())),
                b=ref(p.item_id_b, p.image_id_b, *((c.hash_b, c.quality_b) if c else ())),
                signals=p.signals,
                score=p.score,
                hash_distance=c.distance if c else None,
                hash_view=c.view if c else None,
                pixel_similarity=round(c.similarity, 4) if p.by_pixels and c else None,
            )

        return cls(
            model_id=report.model_id,
            threshold=report.threshold,
            images=report.images,
            exact=report.exact,
            hash_max_distance=copies.max_distance,
            hashed_images=copies.images,
            unhashed_images=copies.unhashed,
            unchecked_copy_candidates=copies.unchecked,
            duplicates=[pair(p) for p in pairs],
            confusables=[
                Confusable(
                    item=items.get(c.item_id),
                    item_id=c.item_id,
                    nearest=items.get(c.nearest_item_id),
                    nearest_item_id=c.nearest_item_id,
                    nearest_score=c.nearest_score,
                    own_score=c.own_score,
                    margin=c.margin,
                )
                for c in report.confusables
            ],
        )


# --- import jobs -----------------------------------------------------------------------


class ImportFailure(BaseModel):
    location: str = Field(description='"https://..." or "s3://bucket/key"')
    reason: str


class ImportJob(BaseModel):
    id: str
    source: str
    state: str = Field(description='"running" or "done"')
    total: int = Field(description="Photos to import.")
    done: int
    failed: int
    progress: float = Field(description="(done + failed) / total")
    failures: list[ImportFailure] = Field(description="The first 50, in the job's order.")
    started_by: str
    created_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def from_proto(cls, job: catalog_pb.ImportJob) -> "ImportJob":
        return cls(
            id=job.id,
            source=job.source,
            state=job.state,
            total=job.total,
            done=job.done,
            failed=job.failed,
            progress=round((job.done + job.failed) / job.total, 4) if job.total else 1.0,
            failures=[ImportFailure(location=f.location, reason=f.reason) for f in job.failures],
            started_by=job.started_by,
            created_at=utc_time(job.created_at),
            finished_at=utc_time(job.finished_at) if job.HasField("finished_at") else None,
        )


class ImportJobList(BaseModel):
    jobs: list[ImportJob] = Field(description="Newest first.")
