"""Protobuf <-> domain conversions for the catalog's messages."""

from datetime import datetime

from google.protobuf.timestamp_pb2 import Timestamp

from photosearch.catalog.v1 import catalog_pb2
from photosearch.common.errors import InvalidArgument
from photosearch_catalog.domain import (
    AdminSettings,
    CopyReport,
    ExternalRef,
    Image,
    ImageRef,
    ImageRole,
    ImportImage,
    ImportJob,
    ImportRecord,
    ImportSummary,
    Item,
    ItemFields,
)


def _timestamp(value: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


def fields_from_proto(item: catalog_pb2.Item) -> ItemFields:
    return ItemFields(
        name=item.name,
        series=item.series,
        maker=item.maker,
        year=item.year,
        variant=item.variant,
        tags=tuple(item.tags),
        attributes=dict(item.attributes),
        external_refs=tuple(ExternalRef(r.system, r.ref, r.url) for r in item.external_refs),
    )


def fields_to_proto(fields: ItemFields) -> catalog_pb2.Item:
    """The editable fields of an item (no id, no timestamps)."""
    return catalog_pb2.Item(
        name=fields.name,
        series=fields.series,
        maker=fields.maker,
        year=fields.year,
        variant=fields.variant,
        tags=list(fields.tags),
        attributes=fields.attributes,
        external_refs=[
            catalog_pb2.ExternalRef(system=r.system, ref=r.ref, url=r.url)
            for r in fields.external_refs
        ],
    )


def item_to_proto(item: Item) -> catalog_pb2.Item:
    message = fields_to_proto(item.fields)
    message.MergeFrom(
        catalog_pb2.Item(
            id=item.id,
            created_at=_timestamp(item.created_at),
            updated_at=_timestamp(item.updated_at),
            image_count=item.image_count,
            import_key=item.import_key,
            cover_image_id=item.cover_image_id,
            pending=item.pending,
            added_by=item.added_by,
        )
    )
    return message


def role_from_proto(role: int, default: ImageRole) -> ImageRole:
    """UNSPECIFIED takes the default; unknown numbers are a caller's mistake."""
    if role == catalog_pb2.IMAGE_ROLE_UNSPECIFIED:
        return default
    try:
        return ImageRole(role)
    except ValueError:
        raise InvalidArgument(f"unknown image role {role}: use OFFICIAL or UPLOADED") from None


def image_to_proto(image: Image) -> catalog_pb2.Image:
    return catalog_pb2.Image(
        id=image.id,
        item_id=image.item_id,
        role=int(image.role),  # type: ignore[arg-type]
        sha256=image.sha256,
        width=image.width,
        height=image.height,
        format=image.format,
        size_bytes=image.size_bytes,
        created_at=_timestamp(image.created_at),
        pending=image.pending,
        added_by=image.added_by,
    )


def import_job_to_proto(job: ImportJob) -> catalog_pb2.ImportJob:
    message = catalog_pb2.ImportJob(
        id=job.id,
        source=job.source,
        state=job.state,
        total=job.total,
        done=job.done,
        failed=job.failed,
        failures=[
            catalog_pb2.ImportJobFailure(location=f.location, reason=f.reason) for f in job.failures
        ],
        created_at=_timestamp(job.created_at),
        started_by=job.started_by,
    )
    if job.finished_at is not None:
        message.finished_at.CopyFrom(_timestamp(job.finished_at))
    return message


def import_record_from_proto(record: catalog_pb2.ImportRecord) -> ImportRecord:
    return ImportRecord(
        import_key=record.import_key,
        fields=fields_from_proto(record.item),
        images=[
            ImportImage(image.data, image.filename, role_from_proto(image.role, ImageRole.OFFICIAL))
            for image in record.images
        ],
        update_existing=record.update_existing,
    )


def image_refs_to_proto(refs: list[ImageRef]) -> catalog_pb2.ImageRefBatch:
    return catalog_pb2.ImageRefBatch(
        refs=[catalog_pb2.ImageRef(image_id=r.image_id, item_id=r.item_id) for r in refs]
    )


def import_summary_to_proto(summary: ImportSummary) -> catalog_pb2.ImportSummary:
    return catalog_pb2.ImportSummary(
        items_created=summary.items_created,
        items_existing=summary.items_existing,
        images_added=summary.images_added,
        images_existing=summary.images_existing,
        errors=[
            catalog_pb2.ImportError(import_key=e.import_key, filename=e.filename, message=e.message)
            for e in summary.errors
        ],
    )


def settings_to_proto(settings: AdminSettings) -> catalog_pb2.Settings:
    return catalog_pb2.Settings(
        photo_search_enabled=settings.photo_search_enabled,
        web_fallback_enabled=settings.web_fallback_enabled,
        vision_api_key_set=settings.vision_api_key_set,
    )


def copy_report_to_proto(report: CopyReport) -> catalog_pb2.FindCopiesResponse:
    return catalog_pb2.FindCopiesResponse(
        pairs=[
            catalog_pb2.CopyPair(
                item_id_a=p.item_id_a,
                image_id_a=p.image_id_a,
                item_id_b=p.item_id_b,
                image_id_b=p.image_id_b,
                distance=p.distance,
                view=p.view,
                quality_a=p.quality_a,
                quality_b=p.quality_b,
                hash_a=p.hash_a.hex(),
                hash_b=p.hash_b.hex(),
                found_by=p.found_by,
                similarity=p.similarity,
            )
            for p in report.pairs
        ],
        max_distance=report.max_distance,
        images=report.images,
        unhashed=report.unhashed,
        unchecked=report.unchecked,
    )
