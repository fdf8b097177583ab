"""The page's photo search: its configuration and fingerprint -> candidates."""

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from photosearch_gateway.auth import search_access
from photosearch_gateway.errors import ApiError
from photosearch_gateway.photo_search import find_candidates, public_config
from photosearch_gateway.routes import errors
from photosearch_gateway.schemas import PublicConfig, SearchQuery, SearchResult
from photosearch_gateway.state import Gateway, gateway

router = APIRouter(prefix="/api/v1", tags=["photo search"])
GatewayDep = Annotated[Gateway, Depends(gateway)]

_SEARCH_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/SearchQuery"}}},
    }
}


@router.get("/config", response_model=PublicConfig, responses=errors())
async def get_config(gw: GatewayDep) -> PublicConfig:
    """Whether photo search is on, and the model files and preprocessing the page runs."""
    return await public_config(gw)


@router.post(
    "/search",
    response_model=SearchResult,
    responses=errors(401, 409, 413, 415, 429),
    dependencies=[search_access],
    openapi_extra=_SEARCH_BODY,
)
async def search_by_fingerprint(request: Request) -> Response:
    """Candidate items for a fingerprint computed on the device. Takes only the vector:
    a photo is refused (415)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise ApiError(
            415,
            "fingerprint_only",
            "send the fingerprint as application/json ({model_id, vector, k}); "
            "this endpoint never takes a photo",
        )
    try:
        # Parsed by pydantic-core straight from the bytes: no intermediate Python objects.
        query = SearchQuery.model_validate_json(await request.body())
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False)) from None
    answer = await find_candidates(request.app.state.gateway, query)
    # Serialised once by pydantic-core (FastAPI would validate the model again first).
    return Response(
        answer.result.model_dump_json(),
        media_type="application/json",
        headers={"Server-Timing": answer.server_timing()},
    )
