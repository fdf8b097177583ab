"""Between the catalog's SQL rows and its domain objects: the columns a query
selects, the objects made of them, and the parameters an insert or update binds."""

from typing import Any

from psycopg.types.json import Jsonb

from photosearch_catalog.domain import (
    APPROVED,
    Contributor,
    ExternalRef,
    Image,
    ImageRole,
    Item,
    ItemFields,
    NewImage,
)

ITEM_COLUMNS = """
    i.id::text, i.name, i.series, i.maker, i.year, i.variant, i.tags, i.attributes,
    i.external_refs, coalesce(i.import_key, ''), i.created_at, i.updated_at,
    (SELECT count(*) FROM images m WHERE m.item_id = i.id AND NOT m.pending),
    coalesce((SELECT m.id::text FROM images m WHERE m.item_id = i.id AND NOT m.pending
              ORDER BY m.role, m.created_at, m.id LIMIT 1), ''),
    i.pending, i.added_by
"""
ITEM_COLUMN_COUNT = 16
IMAGE_COLUMNS = (
    "id::text, item_id::text, role, sha256, width, height, format, size_bytes, filename,"
    " created_at, pending, added_by"
)


def item_from_row(row: Any) -> Item:
    refs = tuple(
        ExternalRef(r.get("system", ""), r.get("ref", ""), r.get("url", "")) for r in row[8]
    )
    fields = ItemFields(
        name=row[1],
        series=row[2],
        maker=row[3],
        year=row[4],
        variant=row[5],
        tags=tuple(row[6]),
        attributes=dict(row[7]),
        external_refs=refs,
    )
    return Item(row[0], fields, row[9], row[10], row[11], int(row[12]), row[13], row[14], row[15])


def image_from_row(row: Any) -> Image:
    return Image(row[0], row[1], ImageRole(row[2]), *row[3:])


def item_values(fields: ItemFields) -> tuple[Any, ...]:
    refs = [{"system": r.system, "ref": r.ref, "url": r.url} for r in fields.external_refs]
    return (
        fields.name,
        fields.series,
        fields.maker,
        fields.year,
        fields.variant,
        list(fields.tags),
        Jsonb(fields.attributes),
        Jsonb(refs),
    )


def image_values(
    image_id: str, item_id: str, image: NewImage, by: Contributor = APPROVED
) -> tuple[Any, ...]:
    return (
        image_id,
        item_id,
        int(image.role),
        image.sha256,
        image.width,
        image.height,
        image.format,
        len(image.data),
        image.filename,
        by.pending,
        by.added_by,
    )


def like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
