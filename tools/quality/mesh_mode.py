"""Mesh mode: the real services as separate processes (photosearch_devstack.Mesh).

The catalog rows go in through catalog's gRPC import (its own manifest reader), the
embedder's queue indexes them, and each query photo is fingerprinted by the
embedder's `Embed` RPC (the same ONNX files and preprocessing the browser uses) and
looked up with search's `Search` RPC, exactly as the gateway does for a client. When
the model has a local graph, `Embed` also returns the photo's local descriptors, and
every query is searched back to back with the fingerprint alone ("global") and as the
page searches ("service-rerank"): the photo as taken, then, when search says turned
views would count, again with the photo turned 90 and 270 degrees too. Both rankings
and latencies compare within one run."""

import hashlib
import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from photosearch.catalog.v1 import catalog_pb2, catalog_pb2_grpc
from photosearch.common.channels import CHANNEL_OPTIONS
from photosearch.embedder.v1 import embedder_pb2, embedder_pb2_grpc
from photosearch.events.v1 import events_pb2
from photosearch.search.v1 import search_pb2, search_pb2_grpc
from photosearch_catalog.cli.import_sources import plan_manifest
from photosearch_catalog.cli.importer import run_import
from photosearch_catalog.cli.plan import Exclusions
from photosearch_devstack.mesh import Mesh
from tools.quality.datasets import Dataset, Photo
from tools.quality.metrics import Ranking
from tools.quality.robustness import Copy
from tools.quality.techniques import SERVICE_RERANK

log = logging.getLogger(__name__)
SERVICES = ["catalog", "search", "embedder"]
MAX_K = 100
# The views the browser sends: the photo as taken, then (when search asks for them)
# turned 90 and 270 degrees.
QUERY_ROTATIONS = (0, 90, 270)


@dataclass(frozen=True)
class Query:
    """A query photo as a client sends it: fingerprint and local descriptors."""

    model_id: str
    vector: list[float]
    local: list[events_pb2.LocalDescriptors]


@dataclass(frozen=True)
class Answer:
    """A query's answer: the items (dataset ids) and scores, and how long its Search
    calls took."""

    ranking: Ranking
    seconds: float
    reranked: bool
    turned_views: bool = False  # a second search with the turned views was needed
    band: str = ""  # "match", "possible" or "no_match"
    # Items re-ranking saw: the fingerprint's top k, and the region index's.
    matched: frozenset[str] = frozenset()


@dataclass
class CatalogIndex:
    """Catalog ids <-> the datasets' own ids."""

    item_of: dict[str, tuple[str, str]] = field(default_factory=dict)  # uuid -> (dataset, item)
    image_of_file: dict[str, str] = field(default_factory=dict)  # sha256 of bytes -> image uuid
    item_ids: dict[tuple[str, str], str] = field(default_factory=dict)  # (dataset, item) -> uuid


class MeshClient:
    def __init__(self, mesh: Mesh) -> None:
        self.mesh = mesh
        self._channels = {
            s: grpc.insecure_channel(mesh.address(s), options=CHANNEL_OPTIONS) for s in SERVICES
        }
        self.catalog = catalog_pb2_grpc.CatalogServiceStub(self._channels["catalog"])
        self.search = search_pb2_grpc.SearchServiceStub(self._channels["search"])
        self.embedder = embedder_pb2_grpc.EmbedderServiceStub(self._channels["embedder"])
        self.index = CatalogIndex()
        self._local_dim: int | None = None

    @property
    def local_dim(self) -> int:
        """The served model's local dimension (0 = no local graph)."""
        if self._local_dim is None:
            info = self.embedder.Info(embedder_pb2.InfoRequest(), timeout=30)
            self._local_dim = int(info.local_dim)
        return self._local_dim

    def close(self) -> None:
        for channel in self._channels.values():
            channel.close()

    def import_dataset(self, dataset: Dataset) -> int:
        plan = plan_manifest(dataset.manifest, Exclusions())
        totals = run_import(self.catalog, plan, show_progress=False)
        if totals.errors:
            raise RuntimeError(f"{dataset.name}: import errors {totals.errors[:3]}")
        return plan.image_count

    def import_copies(self, copies: Iterable[Copy]) -> int:
        """Each copy becomes its own item (tag "robustness"), as a re-upload would."""

        def records() -> Iterator[catalog_pb2.ImportRecord]:
            for copy in copies:
                yield catalog_pb2.ImportRecord(
                    import_key=f"robustness:{copy.key}",
                    item=catalog_pb2.Item(
                        name=copy.key,
                        tags=["robustness"],
                        attributes={"dataset": "robustness", "item_id": copy.key},
                    ),
                    images=[
                        catalog_pb2.ImportImage(
                            data=copy.data,
                            filename=copy.key.replace("/", "_") + ".jpg",
                            role=catalog_pb2.IMAGE_ROLE_OFFICIAL,
                        )
                    ],
                )

        summary = self.catalog.ImportItems(records(), timeout=600)
        if summary.errors:
            raise RuntimeError(f"robustness import errors: {list(summary.errors)[:3]}")
        return int(summary.images_added + summary.images_existing)

    def catalog_images(self) -> int:
        return int(self.catalog.CountImages(catalog_pb2.CountImagesRequest(), timeout=30).count)

    def wait_indexed(self, expected_images: int, timeout: float = 600.0) -> str:
        """Until search's index status says every catalog image is embedded (pending 0)."""
        deadline = time.monotonic() + timeout
        status = None
        while time.monotonic() < deadline:
            try:
                status = self.search.IndexStatus(search_pb2.IndexStatusRequest(), timeout=10)
            except grpc.RpcError:
                status = None
            if (
                status is not None
                and status.model_id
                and status.catalog_images >= expected_images
                and status.pending == 0
            ):
                if status.failed:
                    raise RuntimeError(f"{status.failed} images failed to embed: {status.failures}")
                return str(status.model_id)
            time.sleep(0.5)
        raise TimeoutError(f"index not complete after {timeout:.0f} s: {status}")

    def load_index(self) -> None:
        """Every item and image of the catalog, mapped back to the datasets' ids."""
        token = ""
        while True:
            page = self.catalog.ListItems(
                catalog_pb2.ListItemsRequest(page_size=500, page_token=token), timeout=30
            )
            for item in page.items:
                key = (item.attributes.get("dataset", ""), item.attributes.get("item_id", ""))
                self.index.item_of[item.id] = key
                self.index.item_ids[key] = item.id
                images = self.catalog.ListImages(
                    catalog_pb2.ListImagesRequest(item_id=item.id), timeout=30
                )
                for image in images.images:
                    self.index.image_of_file[f"{item.id}:{image.sha256}"] = image.id
            token = page.next_page_token
            if not token:
                return

    def image_id(self, item_uuid: str, data: bytes) -> str:
        return self.index.image_of_file[f"{item_uuid}:{hashlib.sha256(data).hexdigest()}"]

    def query(self, data: bytes, rotations: tuple[int, ...] = (0,)) -> Query:
        """Fingerprint, and the local descriptors of `rotations` when the model has them."""
        asked = list(rotations) if self.local_dim else []
        reply = self.embedder.Embed(
            embedder_pb2.EmbedRequest(image=data, local_rotations=asked), timeout=60
        )
        return Query(str(reply.model_id), list(reply.embeddings[0].values), list(reply.local))

    def search_items(
        self,
        query: Query,
        tags: list[str],
        k: int,
        local: list[events_pb2.LocalDescriptors],
    ) -> search_pb2.SearchResponse:
        request = search_pb2.SearchRequest(
            model_id=query.model_id,
            vector=query.vector,
            k=k,
            filters=search_pb2.Filters(tags=tags),
            local=local,
        )
        reply: search_pb2.SearchResponse = self.search.Search(request, timeout=30)
        return reply

    def rank(
        self,
        photo: Photo,
        data: bytes,
        tags: list[str],
        k: int,
        qualified: bool = False,
        top_k: int = 20,
    ) -> dict[str, Answer]:
        """One query as a client makes it. Items are named by the datasets' ids
        ("dataset/item" when `qualified`). Returns the answer of the fingerprint alone
        ("global") and, when the model has local descriptors, the page's answer
        (SERVICE_RERANK): the photo as taken first; when search says turned views would
        count, their descriptors too, in a second search. Its time is that of both
        Search calls. `top_k`: search's SEARCH_RERANK_TOP_K, to tell which candidates
        re-ranking saw."""
        query = self.query(data)

        def answer(replies: list[search_pb2.SearchResponse], seconds: float) -> Answer:
            last = replies[-1]
            names = []
            for c in last.candidates:
                dataset, item = self.index.item_of[c.item_id]
                names.append(f"{dataset}/{item}" if qualified else item)
            scores = tuple(float(c.score) for c in last.candidates)
            ranking = Ranking(photo.key, photo.view, photo.item, tuple(names), scores)
            by_global = sorted(
                zip(last.candidates, names, strict=True),
                key=lambda cn: (-cn[0].global_score, cn[0].item_id),
            )
            matched = {n for _, n in by_global[:top_k]} | {
                n for c, n in zip(last.candidates, names, strict=True) if c.from_regions
            }
            band = search_pb2.MatchBand.Name(last.band).removeprefix("MATCH_BAND_").lower()
            return Answer(
                ranking,
                seconds,
                bool(last.reranked),
                len(replies) > 1,
                band,
                frozenset(matched) if last.reranked else frozenset(),
            )

        started = time.perf_counter()
        plain = self.search_items(query, tags, k, [])
        answers = {"global": answer([plain], time.perf_counter() - started)}
        if not query.local:
            return answers
        started = time.perf_counter()
        replies = [self.search_items(query, tags, k, query.local)]
        seconds = time.perf_counter() - started
        if replies[0].turned_views_wanted:
            turned = self.query(data, QUERY_ROTATIONS[1:]).local
            started = time.perf_counter()
            replies.append(self.search_items(query, tags, k, [*query.local, *turned]))
            seconds += time.perf_counter() - started
        answers[SERVICE_RERANK] = answer(replies, seconds)
        return answers

    def count_items(self, tags: list[str]) -> int:
        """Items search returns for a filter (a fingerprint-only search, MAX_K at most)."""
        status = self.search.IndexStatus(search_pb2.IndexStatusRequest(), timeout=10)
        request = search_pb2.SearchRequest(
            model_id=status.model_id,
            vector=[1.0] * status.dim,
            k=MAX_K,
            filters=search_pb2.Filters(tags=tags),
        )
        return len(self.search.Search(request, timeout=30).candidates)

    def wait_regions(self, expected_images: int, timeout: float = 600.0) -> None:
        """Until the region index serves every catalog image."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.search.IndexStatus(search_pb2.IndexStatusRequest(), timeout=10)
            if status.region_indexed >= expected_images:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"region index serves {status.region_indexed} of {expected_images} images"
                )
            time.sleep(0.5)

    def duplicate_pairs(self, model_id: str, limit: int) -> search_pb2.DuplicateReportResponse:
        return self.search.DuplicateReport(
            search_pb2.DuplicateReportRequest(model_id=model_id, limit=limit), timeout=120
        )


def start_mesh(
    data_dir: Path,
    model: str,
    model_cache: Path,
    catalog_images: int,
    timeout: float = 300,
    runtime: str = "onnxruntime",
) -> Mesh:
    """`catalog_images`: what the run imports first; search trains its region index's
    codebook once they are all in (as the offline replica trains it on all of them).
    `runtime`: the embedder's EMBED_RUNTIME; onnxruntime (as exported) by default, so
    that mesh and offline compute the same vectors and must agree exactly."""
    mesh = Mesh(
        data_dir,
        services=list(SERVICES),
        extra_env={
            "EMBED_MODEL": model,
            "EMBED_MODEL_CACHE_DIR": str(model_cache.resolve()),
            "EMBED_MODEL_IDLE_GRACE": "600",
            "EMBED_RUNTIME": runtime,
            "LOG_LEVEL": "warning",
            "SEARCH_REGION_MIN_PHOTOS": str(max(catalog_images, 1)),
            "SEARCH_REGION_POLL_SECONDS": "1",
        },
    )
    try:
        mesh.start(timeout=timeout)
    except Exception:
        mesh.stop()
        raise
    return mesh
