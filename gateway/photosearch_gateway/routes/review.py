"""The review queue: contributions waiting for an admin, approved here; rejecting one is
deleting it (DELETE /api/v1/admin/items/{id} or /images/{id})."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from photosearch_gateway.auth import Caller, require_admin
from photosearch_gateway.errors import log
from photosearch_gateway.review_queue import review_queue
from photosearch_gateway.review_schemas import AdminImage, AdminItem, ReviewQueue
from photosearch_gateway.routes import PathId, errors
from photosearch_gateway.state import Gateway, gateway

router = APIRouter(prefix="/api/v1/admin/review", tags=["review"], responses=errors(401, 403))
GatewayDep = Annotated[Gateway, Depends(gateway)]
AdminDep = Annotated[Caller, Depends(require_admin)]


@router.get("", response_model=ReviewQueue)
async def get_review_queue(
    gw: GatewayDep, admin: AdminDep, limit: Annotated[int, Query(ge=1, le=100)] = 20
) -> ReviewQueue:
    """Pending contributions, oldest first, each photo with its nearest catalog items."""
    return await review_queue(gw, limit)


@router.post("/items/{item_id}/approve", response_model=AdminItem, responses=errors(404))
async def approve_item(item_id: PathId, gw: GatewayDep, admin: AdminDep) -> AdminItem:
    """The item and its pending photos become public; the photos are indexed shortly after."""
    item = await gw.catalog.approve_item(item_id)
    log.info("contribution_approved", item_id=item_id, added_by=item.added_by)
    return AdminItem.from_proto(item)


@router.post("/images/{image_id}/approve", response_model=AdminImage, responses=errors(404))
async def approve_image(image_id: PathId, gw: GatewayDep, admin: AdminDep) -> AdminImage:
    """One photo becomes public (with its item, if that was pending too)."""
    image = await gw.catalog.approve_image(image_id)
    log.info("contribution_approved", image_id=image_id, added_by=image.added_by)
    return AdminImage.from_proto(image)
