"""In-memory gRPC servicers that speak the real protos, for testing the
gateway's routes and error paths without the other services' databases.
The integration tests run the real services instead."""

import hashlib
import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from photosearch.catalog.v1 import catalog_pb2 as cpb
from photosearch.catalog.v1 import catalog_pb2_grpc
from photosearch.common.model_files import ModelFiles
from photosearch.embedder.v1 import embedder_pb2 as epb
from photosearch.embedder.v1 import embedder_pb2_grpc
from photosearch.events.v1 import events_pb2
from photosearch.fallback.v1 import fallback_pb2 as fpb
from photosearch.fallback.v1 import fallback_pb2_grpc
from photosearch.search.v1 import search_pb2 as spb
from photosearch.search.v1 import search_pb2_grpc
from photosearch_gateway.config import GatewaySettings
from photosearch_search.bands import BandSettings, band_of, mark_verified
from photosearch_search.domain import Candidate
from photosearch_search.rerank import Evidence, RerankSettings, rescore, wants_turned_views
from photosearch_search.servicer import BANDS

MODEL = "test/model@p1"
DIM = 4


@dataclass
class World:
    """The state the fakes share, and faults a test can switch on."""

    items: dict[str, cpb.Item] = field(default_factory=dict)
    images: dict[str, tuple[cpb.Image, bytes]] = field(default_factory=dict)
    settings: cpb.Settings = field(default_factory=cpb.Settings)
    vision_key: str = ""
    workers: list[events_pb2.WorkerHeartbeat] = field(default_factory=list)
    vectors: dict[str, tuple[str, list[float]]] = field(default_factory=dict)  # image -> item
    active_model: str = MODEL
    fail: dict[str, grpc.StatusCode] = field(default_factory=dict)  # method -> code
    calls: list[str] = field(default_factory=list)
    last_search: spb.SearchRequest | None = None
    # Matched regions per image when a search carries local descriptors (re-ranking).
    inliers: dict[str, int] = field(default_factory=dict)
    last_web_image: bytes = b""
    # Items search has not heard of through catalog's events yet: no summary in answers.
    unheard: set[str] = field(default_factory=set)
    # Image ids waiting for review (ListContributions), and what Embed answers for a photo.
    pending: list[str] = field(default_factory=list)
    embedding: list[float] = field(default_factory=lambda: [1.0, 0.0, 0.0, 0.0])

    async def check(self, method: str, context: grpc.aio.ServicerContext) -> None:
        self.calls.append(method)
        if method in self.fail:
            await context.abort(self.fail[method], f"injected {self.fail[method].name}")

    def add_item(self, name: str, series: str = "") -> cpb.Item:
        item = cpb.Item(id=uuid.uuid4().hex, name=name, series=series)
        self.items[item.id] = item
        return item

    def add_image(self, item_id: str, data: bytes, vector: list[float] | None = None) -> str:
        image_id = uuid.uuid4().hex
        image = cpb.Image(
            id=image_id,
            item_id=item_id,
            role=cpb.IMAGE_ROLE_OFFICIAL,
            sha256=hashlib.sha256(data).hexdigest(),
            format="PNG",
            size_bytes=len(data),
        )
        self.images[image_id] = (image, data)
        self.items[item_id].image_count += 1
        self.items[item_id].cover_image_id = self.items[item_id].cover_image_id or image_id
        if vector:
            self.vectors[image_id] = (item_id, vector)
        return image_id


class FakeCatalog(catalog_pb2_grpc.CatalogServiceServicer):
    def __init__(self, world: World) -> None:
        self.w = world

    async def GetItem(self, request, context):
        await self.w.check("GetItem", context)
        if request.id not in self.w.items:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no item {request.id}")
        return self.w.items[request.id]

    async def FindCopies(self, request, context):
        await self.w.check("FindCopies", context)
        ids = list(self.w.items)
        pair = {"item_id_a": ids[0], "item_id_b": ids[1], "quality_a": 100, "quality_b": 90}
        return cpb.FindCopiesResponse(
            pairs=[
                # ia/ib is search's pair too; ic is a copy only the hashes see.
                cpb.CopyPair(
                    **pair,
                    image_id_a="ia",
                    image_id_b="ic",
                    distance=2,
                    view="as is",
                    hash_a="0" * 64,
                    hash_b="1" * 64,
                ),
                cpb.CopyPair(
                    **pair,
                    image_id_a="ia",
                    image_id_b="ib",
                    distance=12,
                    view="mirrored",
                    hash_a="0" * 64,
                    hash_b="f" * 64,
                ),
                # A turned copy the hashes missed and the pixel check found.
                cpb.CopyPair(
                    **pair,
                    image_id_a="ia",
                    image_id_b="id",
                    distance=104,
                    view="aligned by keypoints",
                    hash_a="0" * 64,
                    hash_b="2" * 64,
                    found_by="pixels",
                    similarity=0.9712,
                ),
            ][: request.limit or 100],
            max_distance=request.max_distance or 31,
            images=3,
            unhashed=1,
            unchecked=2,
        )

    async def BatchGetItems(self, request, context):
        await self.w.check("BatchGetItems", context)
        return cpb.BatchGetItemsResponse(
            items=[self.w.items[i] for i in request.ids if i in self.w.items]
        )

    async def CreateItem(self, request, context):
        await self.w.check("CreateItem", context)
        if any(i.name == request.item.name for i in self.w.items.values()):
            await context.abort(grpc.StatusCode.ALREADY_EXISTS, "an item has that name")
        item = cpb.Item()
        item.CopyFrom(request.item)
        item.id = uuid.uuid4().hex
        self.w.items[item.id] = item
        return item

    async def DeleteItem(self, request, context):
        await self.w.check("DeleteItem", context)
        if self.w.items.pop(request.id, None) is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no item {request.id}")
        return cpb.DeleteItemResponse()

    async def ListItems(self, request, context):
        await self.w.check("ListItems", context)
        items = [i for i in self.w.items.values() if request.query.lower() in i.name.lower()]
        return cpb.ListItemsResponse(items=items[: request.page_size or 50])

    async def AddImage(self, request, context):
        await self.w.check("AddImage", context)
        if request.item_id not in self.w.items:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no item {request.item_id}")
        if not request.data.startswith(b"\x89PNG"):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "not a supported image")
        digest = hashlib.sha256(request.data).hexdigest()
        for image, _ in self.w.images.values():
            if image.item_id == request.item_id and image.sha256 == digest:
                return cpb.AddImageResponse(image=image, created=False)
        image_id = self.w.add_image(request.item_id, request.data)
        return cpb.AddImageResponse(image=self.w.images[image_id][0], created=True)

    async def GetImage(self, request, context):
        await self.w.check("GetImage", context)
        if request.id not in self.w.images:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no image {request.id}")
        image, data = self.w.images[request.id]
        if request.thumbnail_size:
            data = b"thumb:%d:" % request.thumbnail_size + data
            return cpb.GetImageResponse(image=image, data=data, content_type="image/jpeg")
        return cpb.GetImageResponse(image=image, data=data, content_type="image/png")

    async def ListContributions(self, request, context):
        await self.w.check("ListContributions", context)
        by_item: dict[str, list[cpb.Image]] = {}
        for image_id in self.w.pending:
            image = self.w.images[image_id][0]
            by_item.setdefault(image.item_id, []).append(image)
        return cpb.ListContributionsResponse(
            contributions=[
                cpb.Contribution(item=self.w.items[item_id], pending_images=images)
                for item_id, images in by_item.items()
            ],
            total=len(by_item),
        )

    async def DeleteImage(self, request, context):
        await self.w.check("DeleteImage", context)
        if self.w.images.pop(request.id, None) is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no image {request.id}")
        return cpb.DeleteImageResponse()

    async def ListImages(self, request, context):
        await self.w.check("ListImages", context)
        if request.item_id not in self.w.items:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no item {request.item_id}")
        return cpb.ListImagesResponse(
            images=[i for i, _ in self.w.images.values() if i.item_id == request.item_id]
        )

    async def GetSettings(self, request, context):
        await self.w.check("GetSettings", context)
        return self.w.settings

    async def UpdateSettings(self, request, context):
        await self.w.check("UpdateSettings", context)
        s = self.w.settings
        if request.HasField("photo_search_enabled"):
            s.photo_search_enabled = request.photo_search_enabled
        if request.HasField("web_fallback_enabled"):
            s.web_fallback_enabled = request.web_fallback_enabled
        if request.HasField("vision_api_key"):
            self.w.vision_key = request.vision_api_key
        if request.clear_vision_api_key:
            self.w.vision_key = ""
        s.vision_api_key_set = bool(self.w.vision_key)
        return s


class FakeSearch(search_pb2_grpc.SearchServiceServicer):
    def __init__(self, world: World) -> None:
        self.w = world

    async def Search(self, request, context):
        await self.w.check("Search", context)
        self.w.last_search = request
        best: dict[str, tuple[float, str]] = {}
        for image_id, (item_id, vec) in self.w.vectors.items():
            score = sum(a * b for a, b in zip(vec, request.vector, strict=True))
            if item_id not in best or score > best[item_id][0]:
                best[item_id] = (score, image_id)
        reranked = bool(request.local)
        ranked = sorted(
            (Candidate(item_id, image_id, score) for item_id, (score, image_id) in best.items()),
            key=lambda c: (-c.score, c.item_id),
        )
        evidence = {
            c.item_id: Evidence(0, self.w.inliers.get(c.image_id, 0), c.image_id)
            for c in ranked
            if reranked
        }
        # Search's own rule: verification over the query's chance level, then the bands.
        rule, bands = RerankSettings(), BandSettings()
        ranked = mark_verified(rescore(ranked, evidence, rule) if reranked else ranked, bands)
        return spb.SearchResponse(
            model_id=request.model_id,
            candidates=[
                spb.Candidate(
                    item_id=c.item_id,
                    image_id=c.image_id,
                    score=c.score,
                    global_score=c.score if c.global_score is None else c.global_score,
                    inliers=c.inliers,
                    verification=c.verification,
                    verified=c.verified,
                    item=self.summary(c.item_id),
                )
                for c in ranked[: request.k]
            ],
            reranked=reranked,
            turned_views_wanted=wants_turned_views(request.local, evidence, rule),
            band=BANDS[band_of(ranked, bands)],
            timings=[spb.StageTiming(stage="candidates", milliseconds=1.25)]
            + ([spb.StageTiming(stage="rerank", milliseconds=4.5)] if reranked else [])
            + [spb.StageTiming(stage="names", milliseconds=0.5)],
        )

    def summary(self, item_id: str) -> spb.ItemSummary | None:
        """What search heard of the item in catalog's events (deleted items: nothing)."""
        item = self.w.items.get(item_id)
        if item is None or item_id in self.w.unheard:
            return None
        return spb.ItemSummary(
            name=item.name,
            series=item.series,
            maker=item.maker,
            year=item.year,
            variant=item.variant,
        )

    async def IndexStatus(self, request, context):
        await self.w.check("IndexStatus", context)
        model = request.model_id or self.w.active_model
        return spb.IndexStatusResponse(
            model_id=model,
            active_model_id=self.w.active_model,
            dim=DIM,
            catalog_images=len(self.w.images),
            embedded=len(self.w.vectors),
            pending=len(self.w.images) - len(self.w.vectors),
            workers=self.w.workers,
            failures=[spb.Failure(image_id="x", item_id="y", reason="truncated JPEG")],
            failed=1,
        )

    async def Rebuild(self, request, context):
        await self.w.check("Rebuild", context)
        return spb.RebuildResponse(model_id=request.model_id, queued=7)

    async def ListModels(self, request, context):
        await self.w.check("ListModels", context)
        return spb.ListModelsResponse(
            models=[
                spb.ModelInfo(
                    model_id=MODEL,
                    dim=DIM,
                    embedded=len(self.w.vectors),
                    active=self.w.active_model == MODEL,
                ),
                spb.ModelInfo(
                    model_id="other/model",
                    dim=8,
                    embedded=0,
                    active=self.w.active_model == "other/model",
                ),
            ]
        )

    async def SetActiveModel(self, request, context):
        await self.w.check("SetActiveModel", context)
        if request.model_id not in (MODEL, "other/model"):
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no model {request.model_id}")
        self.w.active_model = request.model_id
        return spb.SetActiveModelResponse(active_model_id=request.model_id)

    async def DuplicateReport(self, request, context):
        await self.w.check("DuplicateReport", context)
        ids = list(self.w.items)
        return spb.DuplicateReportResponse(
            model_id=self.w.active_model,
            threshold=request.threshold or 0.9,
            images=2,
            exact=True,
            duplicates=[
                spb.DuplicatePair(
                    item_id_a=ids[0], image_id_a="ia", item_id_b=ids[1], image_id_b="ib", score=0.97
                )
            ],
            confusables=[
                spb.Confusable(
                    item_id=ids[0],
                    nearest_item_id=ids[1],
                    nearest_score=0.97,
                    own_score=0.9,
                    margin=-0.07,
                )
            ],
        )


class FakeEmbedder(embedder_pb2_grpc.EmbedderServiceServicer):
    def __init__(self, world: World) -> None:
        self.w = world

    async def Embed(self, request, context):
        await self.w.check("Embed", context)
        return epb.EmbedResponse(
            model_id=MODEL,
            dim=DIM,
            embeddings=[events_pb2.Embedding(variant="global", values=self.w.embedding)],
        )

    async def Info(self, request, context):
        await self.w.check("Info", context)
        return epb.InfoResponse(
            model_id=MODEL,
            dim=DIM,
            device="cpu",
            available=True,
            model_note="offline fallback model in use",
        )


class FakeFallback(fallback_pb2_grpc.FallbackServiceServicer):
    def __init__(self, world: World) -> None:
        self.w = world

    async def WebDetect(self, request, context):
        await self.w.check("WebDetect", context)
        self.w.last_web_image = request.image
        return fpb.WebDetectResponse(
            best_guess_labels=["red toy car"],
            leads=[
                fpb.Lead(type=fpb.LEAD_TYPE_BEST_GUESS, label="red toy car"),
                fpb.Lead(type=fpb.LEAD_TYPE_WEB_ENTITY, label="Matchbox", score=0.8),
                fpb.Lead(
                    type=fpb.LEAD_TYPE_PAGE_WITH_MATCHING_IMAGE,
                    url="https://example.org/car",
                    title="A car",
                ),
            ],
        )


async def start_fakes(world: World) -> tuple[grpc.aio.Server, str]:
    server = grpc.aio.server()
    catalog_pb2_grpc.add_CatalogServiceServicer_to_server(FakeCatalog(world), server)
    search_pb2_grpc.add_SearchServiceServicer_to_server(FakeSearch(world), server)
    embedder_pb2_grpc.add_EmbedderServiceServicer_to_server(FakeEmbedder(world), server)
    fallback_pb2_grpc.add_FallbackServiceServicer_to_server(FakeFallback(world), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    await health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, f"127.0.0.1:{port}"


def write_model(
    cache_dir: Path, model_id: str = MODEL, dim: int = DIM, local_dim: int | None = None
) -> ModelFiles:
    """A model export as the embedder writes it (the ONNX bytes are not run here); with
    `local_dim`, also its local-descriptor graph."""
    directory = ModelFiles.directory_for(cache_dir, model_id)
    directory.mkdir(parents=True, exist_ok=True)
    onnx = b"onnx-bytes-" * 100
    (directory / "model.onnx").write_bytes(onnx)
    spec: dict[str, Any] = {
        "version": 1,
        "resize": {"short_side": 4},
        "center_crop": {"width": 2, "height": 2},
    }
    hashes = {"model.onnx": hashlib.sha256(onnx).hexdigest()}
    if local_dim is not None:
        local = b"local-onnx-bytes-" * 50
        (directory / "local.onnx").write_bytes(local)
        hashes["local.onnx"] = hashlib.sha256(local).hexdigest()
        spec["local"] = {
            "onnx": "local.onnx",
            "input_name": "pixel_values",
            "output_name": "local",
            "long_side": 448,
            "multiple": 32,
            "square": False,
            "dim": local_dim,
        }
    (directory / "preprocess.json").write_text(json.dumps(spec))
    hashes["preprocess.json"] = hashlib.sha256(json.dumps(spec).encode()).hexdigest()
    files = ModelFiles(directory, model_id, dim, "model.onnx", hashes)
    files.write_manifest()
    return files


def unreachable_settings(model_dir: Path, **overrides: Any) -> GatewaySettings:
    """Gateway settings whose four services are at an address nothing listens on."""
    nowhere = "127.0.0.1:1"
    return GatewaySettings(
        catalog_addr=nowhere,
        search_addr=nowhere,
        embedder_addr=nowhere,
        fallback_addr=nowhere,
        model_dir=model_dir,
        **overrides,
    )
