"""Admin API: settings (the Vision key is write-only), index status, rebuild,
models, the duplicates report and catalog clean-up. Every route needs the admin token."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from photosearch.common.logging import redact
from photosearch_gateway import index_admin
from photosearch_gateway.admin_schemas import (
    ActiveModel,
    ActiveModelChange,
    AdminSettings,
    AdminSettingsUpdate,
    DuplicateReport,
    IndexStatus,
    ModelList,
    RebuildAccepted,
    RebuildRequest,
)
from photosearch_gateway.auth import require_admin
from photosearch_gateway.routes import PathId, errors
from photosearch_gateway.state import Gateway, gateway

router = APIRouter(
    prefix="/api/v1/admin",
    tags=["admin"],
    dependencies=[Depends(require_admin)],
    responses=errors(401, 403),
)
GatewayDep = Annotated[Gateway, Depends(gateway)]
ModelQuery = Annotated[str, Query(max_length=200, description="Default: the active model.")]


@router.get("/settings", response_model=AdminSettings)
async def get_settings(gw: GatewayDep) -> AdminSettings:
    return AdminSettings.from_proto(await gw.catalog.get_settings())


@router.put("/settings", response_model=AdminSettings)
async def update_settings(body: AdminSettingsUpdate, gw: GatewayDep) -> AdminSettings:
    """Change the toggles and/or the Google Vision key. The key is never returned."""
    if body.vision_api_key is not None:
        redact(body.vision_api_key.get_secret_value().strip())  # masked in any later log line
    settings = await gw.catalog.update_settings(body.to_proto())
    gw.catalog_settings.put(settings)
    return AdminSettings.from_proto(settings)


@router.get("/index", response_model=IndexStatus)
async def get_index_status(gw: GatewayDep, model_id: ModelQuery = "") -> IndexStatus:
    """Images in the catalog, embedded, pending, failed; workers online; whether a rebuild
    is possible now and why not."""
    return await index_admin.index_status(gw, model_id)


@router.post(
    "/index/rebuild", response_model=RebuildAccepted, status_code=202, responses=errors(409)
)
async def rebuild_index(body: RebuildRequest, gw: GatewayDep) -> RebuildAccepted:
    """Queue every image that has no vector for the model. Refused (409, with the reason)
    while no embedder worker for that model is online."""
    return await index_admin.rebuild(gw, body.model_id, body.retry_failed)


@router.get("/models", response_model=ModelList)
async def list_models(gw: GatewayDep) -> ModelList:
    return await index_admin.list_models(gw)


@router.put("/models/active", response_model=ActiveModel, responses=errors(404, 409))
async def set_active_model(body: ActiveModelChange, gw: GatewayDep) -> ActiveModel:
    """Switch searches to another model (once it covers the catalog, or forced)."""
    return ActiveModel(
        active_model_id=await index_admin.set_active_model(gw, body.model_id, body.force)
    )


@router.get("/duplicates", response_model=DuplicateReport, responses=errors(404))
async def duplicate_report(
    gw: GatewayDep,
    model_id: ModelQuery = "",
    threshold: Annotated[float, Query(ge=0.0, le=1.0, description="0 = the default")] = 0.0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    hash_distance: Annotated[
        int, Query(ge=0, le=47, description="PDQ bits of 256; 0 = the recommended 31")
    ] = 0,
) -> DuplicateReport:
    """Likely duplicate entries: images of different items that look alike to the model
    (fingerprints) or are copies of one picture (perceptual hashes, whatever the model),
    and the items most easily confused with another. A model search does not know is a
    404."""
    return await index_admin.duplicate_report(gw, model_id, threshold, limit, hash_distance)


@router.delete("/items/{item_id}", status_code=204, response_class=Response, responses=errors(404))
async def delete_item(item_id: PathId, gw: GatewayDep) -> Response:
    """Delete an item with its images (their vectors leave the index too)."""
    await gw.catalog.delete_item(item_id)
    return Response(status_code=204)


@router.delete(
    "/images/{image_id}", status_code=204, response_class=Response, responses=errors(404)
)
async def delete_image(image_id: PathId, gw: GatewayDep) -> Response:
    await gw.catalog.delete_image(image_id)
    return Response(status_code=204)
