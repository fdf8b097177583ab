"""Photo search as the page sees it: what it needs to fingerprint on the device
(/config), and a fingerprint turned into candidate items (/search)."""

import time
from dataclasses import dataclass
from typing import Any

from photosearch.common.clock import elapsed_ms
from photosearch.common.local import SALIENT_CELLS
from photosearch.common.model_files import ModelFiles, sri_sha256
from photosearch.common.subjects import model_key
from photosearch.events.v1 import events_pb2
from photosearch.search.v1 import search_pb2 as search_pb
from photosearch_gateway.errors import ApiError
from photosearch_gateway.local_query import local_dim, local_messages
from photosearch_gateway.oidc_sign_in import sign_in
from photosearch_gateway.schemas import (
    Candidate,
    ItemSummary,
    LocalModelAsset,
    ModelAsset,
    PublicConfig,
    SearchQuery,
    SearchResult,
    SignInConfig,
    thumbnail_url,
)
from photosearch_gateway.state import NO_ACTIVE_MODEL, Gateway

ORT_BASE_URL = "/vendor/ort/"
# search's answer bands, as the HTTP API names them.
BANDS = {
    search_pb.MATCH_BAND_MATCH: "match",
    search_pb.MATCH_BAND_POSSIBLE: "possible",
    search_pb.MATCH_BAND_NO_MATCH: "no_match",
}


def model_file_url(files: ModelFiles, name: str) -> str:
    # The digest in the query makes a re-export a new URL, so the file can be cached forever.
    digest = files.files.get(name, "")[:16]
    return f"/models/{model_key(files.model_id)}/{name}" + (f"?v={digest}" if digest else "")


def local_asset(files: ModelFiles, preprocess: dict[str, object]) -> LocalModelAsset | None:
    """The local graph, when preprocess.json describes one and the manifest lists its file."""
    section = preprocess.get("local")
    name = section.get("onnx") if isinstance(section, dict) else None
    if not isinstance(name, str) or name not in files.files or local_dim(preprocess) is None:
        return None
    sha = files.files[name]
    return LocalModelAsset(
        onnx_url=model_file_url(files, name),
        onnx_sha256=sha,
        onnx_integrity=sri_sha256(sha),
        onnx_bytes=(files.directory / name).stat().st_size,
        salient_cells=SALIENT_CELLS,
    )


def model_asset(files: ModelFiles) -> ModelAsset:
    onnx_sha = files.files.get(files.onnx, "")
    preprocess = files.preprocess()
    return ModelAsset(
        model_id=files.model_id,
        dim=files.dim,
        onnx_url=model_file_url(files, files.onnx),
        onnx_sha256=onnx_sha,
        onnx_integrity=sri_sha256(onnx_sha) if onnx_sha else "",
        onnx_bytes=files.onnx_path.stat().st_size,
        preprocess_url=model_file_url(files, "preprocess.json"),
        preprocess=preprocess,
        local=local_asset(files, preprocess),
    )


def _unavailable(code: str, reason: str, common: dict[str, Any]) -> PublicConfig:
    return PublicConfig(
        photo_search_available=False,
        unavailable_reason=reason,
        unavailable_code=code,
        model=None,
        **common,
    )


async def public_config(gw: Gateway) -> PublicConfig:
    settings = await gw.catalog_settings.get()
    fallback = settings.web_fallback_enabled and settings.vision_api_key_set
    offer = await sign_in(gw)
    common = {
        "sign_in": SignInConfig(**vars(offer)) if offer else None,
        "photo_search_enabled": settings.photo_search_enabled,
        "web_fallback_available": fallback,
        "ort_base_url": ORT_BASE_URL,
        "max_upload_bytes": gw.settings.max_upload_bytes,
    }
    if not settings.photo_search_enabled:
        reason = "photo search is turned off (an admin can turn it on)"
        return _unavailable("photo_search_off", reason, common)
    try:
        model_id = await gw.active_model.get()
    except ApiError as exc:
        if exc.code != NO_ACTIVE_MODEL:
            raise
        return _unavailable("no_active_model", exc.message, common)
    files = gw.model_files(model_id)
    if files is None:
        reason = f"the model {model_id} has not been exported for browsers yet"
        return _unavailable("model_not_exported", reason, common)
    try:
        asset = model_asset(files)
    except (OSError, ValueError) as exc:
        reason = f"the files of model {model_id} are unreadable ({type(exc).__name__})"
        return _unavailable("model_unreadable", reason, common)
    return PublicConfig(photo_search_available=True, unavailable_reason=None, model=asset, **common)


async def _check_query(gw: Gateway, query: SearchQuery) -> list[events_pb2.LocalDescriptors]:
    """Refuses a query search could not answer; returns its local descriptors as search
    takes them."""
    settings = await gw.catalog_settings.get()
    if not settings.photo_search_enabled:
        raise ApiError(
            409,
            "photo_search_disabled",
            "photo search is turned off; an admin can turn it on, or add the item manually",
        )
    active = await gw.active_model.get()
    files = gw.model_files(active)
    expected = {"expected_model_id": active, "expected_dim": files.dim if files else None}
    if query.model_id != active:
        raise ApiError(
            400,
            "model_mismatch",
            f"the fingerprint was made with {query.model_id}, but search uses {active}: "
            "reload the page to get the current model",
            details=expected,
        )
    if files is not None and len(query.vector) != files.dim:
        raise ApiError(
            400,
            "wrong_dimension",
            f"the fingerprint has {len(query.vector)} values; {active} makes {files.dim}",
            details=expected,
        )
    if not query.local:
        return []
    try:
        spec = files.preprocess() if files is not None else None
    except (OSError, ValueError):
        spec = None  # unreadable here: search still checks the descriptors
    dim = local_dim(spec) if spec is not None else None
    if spec is not None and dim is None:
        raise ApiError(
            400,
            "local_unsupported",
            f"{active} makes no local descriptors: search with the fingerprint alone "
            "(reload the page to get the current model)",
            details=expected,
        )
    return local_messages(query.local, dim)


@dataclass(frozen=True)
class Answer:
    result: SearchResult
    # (stage, milliseconds): search's own stages (candidates, rerank, names), then the
    # Search RPC as the gateway saw it, then a name lookup in catalog when one was needed.
    timings: list[tuple[str, float]]

    def server_timing(self) -> str:
        """The Server-Timing header: where the time went, for a browser's network panel."""
        return ", ".join(f"{stage};dur={ms:.2f}" for stage, ms in self.timings)


async def item_summaries(
    gw: Gateway, reply: search_pb.SearchResponse
) -> tuple[dict[str, ItemSummary], float | None]:
    """What the page shows of each candidate's item, as search sent it; catalog is asked
    only for the items search has not heard of yet (then the milliseconds that took).
    Items catalog no longer has are left out."""
    items = {
        c.item_id: ItemSummary.from_search(c.item_id, c.item)
        for c in reply.candidates
        if c.HasField("item")
    }
    missing = [c.item_id for c in reply.candidates if c.item_id not in items]
    if not missing:
        return items, None
    started = time.perf_counter()
    found = await gw.catalog.batch_get_items(missing)
    items.update({i: ItemSummary.from_proto(item) for i, item in found.items()})
    return items, elapsed_ms(started)


async def find_candidates(gw: Gateway, query: SearchQuery) -> Answer:
    local = await _check_query(gw, query)
    request = search_pb.SearchRequest(
        model_id=query.model_id,
        vector=query.vector,
        k=query.k,
        filters=search_pb.Filters(
            series=query.filters.series, makers=query.filters.makers, tags=query.filters.tags
        ),
        min_score=query.min_score,
        local=local,
    )
    started = time.perf_counter()
    reply = await gw.search.search(request)
    timings = [(t.stage, t.milliseconds) for t in reply.timings]
    timings.append(("search", elapsed_ms(started)))
    items, asked_catalog = await item_summaries(gw, reply)
    if asked_catalog is not None:
        timings.append(("catalog", asked_catalog))
    result = SearchResult(
        model_id=reply.model_id or query.model_id,
        exact=reply.exact,
        reranked=reply.reranked,
        turned_views_wanted=reply.turned_views_wanted,
        band=BANDS.get(reply.band, "no_match"),
        candidates=[
            Candidate(
                item=items[c.item_id],
                image_id=c.image_id,
                score=round(c.score, 6),
                # Without re-ranking the score is the fingerprint similarity.
                global_score=round(c.global_score if reply.reranked else c.score, 6),
                inliers=c.inliers,
                verification=round(c.verification, 6),
                verified=c.verified,
                from_regions=c.from_regions,
                thumbnail_url=thumbnail_url(c.image_id),
            )
            for c in reply.candidates
            if c.item_id in items
        ],
    )
    return Answer(result, timings)
