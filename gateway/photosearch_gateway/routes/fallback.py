"""The opt-in web lookup: the one route that sends a photo off the premises."""

from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, UploadFile

from photosearch_gateway.auth import fallback_access
from photosearch_gateway.errors import ApiError
from photosearch_gateway.routes import errors
from photosearch_gateway.schemas import WebLeads
from photosearch_gateway.state import Gateway, gateway
from photosearch_gateway.uploads import read_photo

router = APIRouter(prefix="/api/v1/fallback", tags=["web fallback"])


@router.post(
    "/web",
    response_model=WebLeads,
    responses=errors(401, 409, 413, 429),
    dependencies=[fallback_access],
)
async def search_the_web(
    photo: Annotated[UploadFile, File(description="JPEG, PNG, WebP, GIF or HEIC")],
    gw: Annotated[Gateway, Depends(gateway)],
    max_results: Annotated[int, Form(ge=1, le=50)] = 10,
) -> WebLeads:
    """Sends the photo to Google Cloud Vision Web Detection and returns its leads (best
    guess, entities, matching images, pages). Nothing is stored. Only when an admin has
    turned the fallback on and set a key (else 409 saying which is missing)."""
    settings = await gw.catalog_settings.get()
    if not settings.web_fallback_enabled:
        raise ApiError(409, "fallback_disabled", "the web search is turned off on this server")
    if not settings.vision_api_key_set:
        raise ApiError(
            409, "fallback_not_configured", "the web search has no Google Vision API key set"
        )
    data = await read_photo(photo, gw.settings.max_upload_bytes)
    return WebLeads.from_proto(await gw.fallback.web_detect(data, max_results))
