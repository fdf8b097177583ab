"""Photo search as the page sees it: what it needs to fingerprint on the device
(/config), and a fingerprint turned into candidate items (/search)."""

from photosearch.common.model_files import ModelFiles, sri_sha256
from photosearch.common.subjects import model_key
from photosearch.search.v1 import search_pb2 as search_pb
from photosearch_gateway.errors import ApiError
from photosearch_gateway.schemas import (
    Candidate,
    ItemSummary,
    ModelAsset,
    PublicConfig,
    SearchQuery,
    SearchResult,
    thumbnail_url,
)
from photosearch_gateway.state import NO_ACTIVE_MODEL, Gateway

ORT_BASE_URL = "/vendor/ort/"


def model_file_url(files: ModelFiles, name: str) -> str:
    # The digest in the query makes a re-export a new URL, so the file can be cached forever.
    digest = files.files.get(name, "")[:16]
    return f"/models/{model_key(files.model_id)}/{name}" + (f"?v={digest}" if digest else "")


def model_asset(files: ModelFiles) -> ModelAsset:
    onnx_sha = files.files.get(files.onnx, "")
    return ModelAsset(
        model_id=files.model_id,
        dim=files.dim,
        onnx_url=model_file_url(files, files.onnx),
        onnx_sha256=onnx_sha,
        onnx_integrity=sri_sha256(onnx_sha) if onnx_sha else "",
        onnx_bytes=files.onnx_path.stat().st_size,
        preprocess_url=model_file_url(files, "preprocess.json"),
        preprocess=files.preprocess(),
    )


async def public_config(gw: Gateway) -> PublicConfig:
    settings = await gw.catalog_settings.get()
    fallback = settings.web_fallback_enabled and settings.vision_api_key_set
    common = {
        "photo_search_enabled": settings.photo_search_enabled,
        "web_fallback_available": fallback,
        "ort_base_url": ORT_BASE_URL,
        "max_upload_bytes": gw.settings.max_upload_bytes,
    }
    if not settings.photo_search_enabled:
        reason = "photo search is turned off (an admin can turn it on)"
        return PublicConfig(
            photo_search_available=False, unavailable_reason=reason, model=None, **common
        )
    try:
        model_id = await gw.active_model.get()
    except ApiError as exc:
        if exc.code != NO_ACTIVE_MODEL:
            raise
        return PublicConfig(
            photo_search_available=False, unavailable_reason=exc.message, model=None, **common
        )
    files = gw.model_files(model_id)
    if files is None:
        reason = f"the model {model_id} has not been exported for browsers yet"
        return PublicConfig(
            photo_search_available=False, unavailable_reason=reason, model=None, **common
        )
    try:
        asset = model_asset(files)
    except (OSError, ValueError) as exc:
        reason = f"the files of model {model_id} are unreadable ({type(exc).__name__})"
        return PublicConfig(
            photo_search_available=False, unavailable_reason=reason, model=None, **common
        )
    return PublicConfig(photo_search_available=True, unavailable_reason=None, model=asset, **common)


async def _check_query(gw: Gateway, query: SearchQuery) -> None:
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


async def find_candidates(gw: Gateway, query: SearchQuery) -> SearchResult:
    await _check_query(gw, query)
    request = search_pb.SearchRequest(
        model_id=query.model_id,
        vector=query.vector,
        k=query.k,
        filters=search_pb.Filters(
            series=query.filters.series, makers=query.filters.makers, tags=query.filters.tags
        ),
        min_score=query.min_score,
    )
    reply = await gw.search.search(request)
    items = await gw.catalog.batch_get_items([c.item_id for c in reply.candidates])
    return SearchResult(
        model_id=reply.model_id or query.model_id,
        exact=reply.exact,
        candidates=[
            Candidate(
                item=ItemSummary.from_proto(items[c.item_id]),
                image_id=c.image_id,
                score=round(c.score, 6),
                thumbnail_url=thumbnail_url(c.image_id),
            )
            for c in reply.candidates
            if c.item_id in items  # deleted since it was indexed: not a candidate any more
        ],
    )
