"""Items and images for the page and for manual entry."""

from typing import Annotated

from fastapi import APIRouter, Depends, File, Header, Query, Response, UploadFile

from photosearch.catalog.v1 import catalog_pb2 as catalog_pb
from photosearch_gateway.auth import Caller, needs_review, require_contributor
from photosearch_gateway.errors import ApiError
from photosearch_gateway.routes import PathId, errors
from photosearch_gateway.schemas import (
    DEFAULT_THUMBNAIL,
    THUMBNAIL_SIZES,
    Image,
    ImageAdded,
    ImageList,
    Item,
    ItemCreate,
    ItemPage,
)
from photosearch_gateway.state import Gateway, gateway
from photosearch_gateway.uploads import read_photo

router = APIRouter(prefix="/api/v1", tags=["items"])
GatewayDep = Annotated[Gateway, Depends(gateway)]
WriterDep = Annotated[Caller, Depends(require_contributor)]
Filter = Annotated[str, Query(max_length=200)]
# Image bytes never change for an id: browsers and proxies may keep them.
IMMUTABLE = "public, max-age=31536000, immutable"


@router.get("/items", response_model=ItemPage, responses=errors())
async def list_items(
    gw: GatewayDep,
    query: Filter = "",
    series: Filter = "",
    maker: Filter = "",
    tag: Filter = "",
    page_size: Annotated[int, Query(ge=1, le=200)] = 50,
    page_token: Annotated[str, Query(max_length=500)] = "",
) -> ItemPage:
    """Items, filtered by a case-insensitive name match, series, maker or tag."""
    request = catalog_pb.ListItemsRequest(
        page_size=page_size,
        page_token=page_token,
        query=query,
        series=series,
        maker=maker,
        tag=tag,
    )
    reply = await gw.catalog.list_items(request)
    return ItemPage(
        items=[Item.from_proto(i) for i in reply.items],
        next_page_token=reply.next_page_token or None,
    )


@router.post(
    "/items",
    response_model=Item,
    status_code=201,
    responses=errors(401, 403, 409, 429),
)
async def create_item(body: ItemCreate, gw: GatewayDep, caller: WriterDep) -> Item:
    """Add an item by hand (the page's "add manually"). A contributor's item waits for an
    admin's review (`pending`): it is not listed and its photos are not searchable yet."""
    item = await gw.catalog.create_item(
        body.to_proto(), pending=needs_review(gw, caller), added_by=caller.identity
    )
    return Item.from_proto(item)


@router.get("/items/{item_id}", response_model=Item, responses=errors(404))
async def get_item(item_id: PathId, gw: GatewayDep) -> Item:
    return Item.from_proto(await gw.catalog.get_item(item_id))


@router.get("/items/{item_id}/images", response_model=ImageList, responses=errors(404))
async def list_images(item_id: PathId, gw: GatewayDep) -> ImageList:
    return ImageList(images=[Image.from_proto(i) for i in await gw.catalog.list_images(item_id)])


@router.post(
    "/items/{item_id}/images",
    response_model=ImageAdded,
    status_code=201,
    responses={
        **errors(401, 403, 404, 413, 415, 429),
        200: {"description": "Already on this item"},
    },
)
async def add_image(
    item_id: PathId,
    photo: Annotated[UploadFile, File(description="JPEG, PNG, WebP, GIF or HEIC")],
    response: Response,
    gw: GatewayDep,
    caller: WriterDep,
) -> ImageAdded:
    """Add a photo to an item; it is fingerprinted and searchable shortly after, once an
    admin has approved it when a contributor sent it (`pending`)."""
    data = await read_photo(photo, gw.settings.max_upload_bytes)
    reply = await gw.catalog.add_image(
        item_id,
        data,
        photo.filename or "",
        catalog_pb.IMAGE_ROLE_UPLOADED,
        pending=needs_review(gw, caller),
        added_by=caller.identity,
    )
    if not reply.created:
        response.status_code = 200
    return ImageAdded(image=Image.from_proto(reply.image), created=reply.created)


def _not_modified(etag: str, if_none_match: str | None) -> Response | None:
    if if_none_match and etag in if_none_match:
        return Response(status_code=304, headers={"Cache-Control": IMMUTABLE, "ETag": etag})
    return None


def _image_response(reply: catalog_pb.GetImageResponse, etag: str) -> Response:
    headers = {"Cache-Control": IMMUTABLE, "ETag": etag}
    return Response(reply.data, media_type=reply.content_type or "image/jpeg", headers=headers)


_IMAGE_RESPONSES = {
    **errors(404),
    200: {"content": {"image/*": {}}, "description": "The image bytes"},
    304: {"description": "Not modified"},
}


@router.get("/images/{image_id}", response_class=Response, responses=_IMAGE_RESPONSES)
async def get_image(
    image_id: PathId,
    gw: GatewayDep,
    if_none_match: Annotated[str | None, Header(max_length=500)] = None,
) -> Response:
    """The original image bytes."""
    etag = f'"{image_id}-0"'
    cached = _not_modified(etag, if_none_match)
    return cached or _image_response(await gw.catalog.get_image(image_id), etag)


@router.get("/images/{image_id}/thumbnail", response_class=Response, responses=_IMAGE_RESPONSES)
async def get_thumbnail(
    image_id: PathId,
    gw: GatewayDep,
    size: Annotated[int, Query(description=f"One of {THUMBNAIL_SIZES}")] = DEFAULT_THUMBNAIL,
    if_none_match: Annotated[str | None, Header(max_length=500)] = None,
) -> Response:
    """A JPEG that fits in size x size, cached by browsers for a year."""
    if size not in THUMBNAIL_SIZES:
        raise ApiError(400, "invalid_argument", f"size must be one of {list(THUMBNAIL_SIZES)}")
    etag = f'"{image_id}-{size}"'
    cached = _not_modified(etag, if_none_match)
    return cached or _image_response(await gw.catalog.get_image(image_id, size), etag)
