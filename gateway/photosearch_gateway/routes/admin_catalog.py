"""The admin's view of the catalog: every item, pending ones included, with who added
it; edits; every photo of an item. Deleting is in routes/admin.py."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from photosearch.catalog.v1 import catalog_pb2 as catalog_pb
from photosearch_gateway.auth import Caller, require_admin
from photosearch_gateway.errors import ApiError
from photosearch_gateway.review_schemas import (
    AdminImage,
    AdminImageList,
    AdminItem,
    AdminItemPage,
    ItemUpdate,
)
from photosearch_gateway.routes import PathId, errors
from photosearch_gateway.state import Gateway, gateway

router = APIRouter(prefix="/api/v1/admin/items", tags=["admin"], responses=errors(401, 403))
GatewayDep = Annotated[Gateway, Depends(gateway)]
AdminDep = Annotated[Caller, Depends(require_admin)]
Filter = Annotated[str, Query(max_length=200)]


@router.get("", response_model=AdminItemPage)
async def list_all_items(
    gw: GatewayDep,
    admin: AdminDep,
    query: Filter = "",
    page_size: Annotated[int, Query(ge=1, le=200)] = 50,
    page_token: Annotated[str, Query(max_length=500)] = "",
) -> AdminItemPage:
    """Items by name (case-insensitive match), pending ones included."""
    request = catalog_pb.ListItemsRequest(
        query=query, page_size=page_size, page_token=page_token, include_pending=True
    )
    reply = await gw.catalog.list_items(request)
    return AdminItemPage(
        items=[AdminItem.from_proto(i) for i in reply.items],
        next_page_token=reply.next_page_token or None,
    )


@router.patch("/{item_id}", response_model=AdminItem, responses=errors(404, 409))
async def update_item(
    item_id: PathId, body: ItemUpdate, gw: GatewayDep, admin: AdminDep
) -> AdminItem:
    item, paths = body.to_proto(item_id)
    if not paths:
        raise ApiError(400, "invalid_argument", "name at least one field to change")
    return AdminItem.from_proto(await gw.catalog.update_item(item, paths))


@router.get("/{item_id}/images", response_model=AdminImageList, responses=errors(404))
async def list_all_images(item_id: PathId, gw: GatewayDep, admin: AdminDep) -> AdminImageList:
    """Every photo of the item, pending ones included."""
    images = await gw.catalog.list_images(item_id, include_pending=True)
    return AdminImageList(images=[AdminImage.from_proto(i) for i in images])
