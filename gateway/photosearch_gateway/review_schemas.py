"""The JSON shapes of the review queue and the admin's catalog view."""

from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

from photosearch.catalog.v1 import catalog_pb2 as catalog_pb
from photosearch_gateway.schemas import (
    Image,
    Item,
    ItemSummary,
    Strict,
    Tag,
    Text,
)


class AdminItem(Item):
    added_by: str = Field(description='Who made it ("oidc:<sub>", "contributor-token", ...).')

    @classmethod
    def from_proto(cls, item: catalog_pb.Item) -> "AdminItem":
        return cls(**Item.from_proto(item).model_dump(), added_by=item.added_by)


class AdminImage(Image):
    added_by: str

    @classmethod
    def from_proto(cls, image: catalog_pb.Image) -> "AdminImage":
        return cls(**Image.from_proto(image).model_dump(), added_by=image.added_by)


class AdminItemPage(BaseModel):
    items: list[AdminItem]
    next_page_token: str | None


class AdminImageList(BaseModel):
    images: list[AdminImage]


class Neighbour(BaseModel):
    """An item already in the catalog that looks like the contributed photo."""

    item: ItemSummary
    image_id: str
    score: float = Field(description="Fingerprint similarity to the contributed photo.")
    thumbnail_url: str


class PendingImage(BaseModel):
    image: AdminImage
    nearest: list[Neighbour] = Field(
        description="The catalog's closest items, best first: a duplicate shows up here."
    )
    nearest_unavailable: str | None = Field(
        default=None, description="Why nearest is empty when it could not be computed."
    )


class Contribution(BaseModel):
    item: AdminItem = Field(description="Pending itself, or approved with pending photos.")
    pending_images: list[PendingImage]


class ReviewQueue(BaseModel):
    total: int = Field(description="Items with something pending, all of them.")
    contributions: list[Contribution] = Field(description="Oldest first.")


class ItemUpdate(Strict):
    """The fields to change; those left out stay as they are."""

    name: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
        | None
    ) = None
    series: Text | None = None
    maker: Text | None = None
    year: int | None = Field(default=None, ge=0, le=9999, description="0 clears it.")
    variant: Text | None = None
    tags: list[Tag] | None = Field(default=None, max_length=50)

    def to_proto(self, item_id: str) -> tuple[catalog_pb.Item, list[str]]:
        given = self.model_dump(exclude_unset=True, exclude_none=True)
        return catalog_pb.Item(id=item_id, **given), sorted(given)
