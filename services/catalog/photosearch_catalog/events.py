"""The catalog's events (photosearch.events.v1), built from domain objects.
They are written to the outbox (outbox.py) and published by the relay (relay.py)."""

from google.protobuf.timestamp_pb2 import Timestamp

from photosearch.common import subjects
from photosearch.events.v1 import events_pb2
from photosearch_catalog.domain import Image, ItemFields
from photosearch_catalog.outbox import Event


def image_added(image: Image) -> Event:
    added_at = Timestamp()
    added_at.FromDatetime(image.created_at)
    message = events_pb2.ImageAdded(
        image_id=image.id, item_id=image.item_id, sha256=image.sha256, added_at=added_at
    )
    return subjects.IMAGE_ADDED, message


def image_deleted(image: Image) -> Event:
    return subjects.IMAGE_DELETED, events_pb2.ImageDeleted(image_id=image.id, item_id=image.item_id)


def item_upserted(item_id: str, fields: ItemFields) -> Event:
    message = events_pb2.ItemUpserted(
        item_id=item_id,
        name=fields.name,
        series=fields.series,
        maker=fields.maker,
        tags=list(fields.tags),
        year=fields.year,
        variant=fields.variant,
    )
    return subjects.ITEM_UPSERTED, message


def item_deleted(item_id: str, image_ids: list[str]) -> Event:
    return subjects.ITEM_DELETED, events_pb2.ItemDeleted(item_id=item_id, image_ids=image_ids)
