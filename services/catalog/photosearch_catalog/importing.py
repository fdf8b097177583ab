"""Bulk import: one record per item, idempotent on the record's import key and
each image's sha256, so a re-run adds nothing and an interrupted run resumes.
A bad image or record is reported in the summary and the import goes on; each
record is written in one transaction (item, images, events) or not at all."""

import uuid
from collections.abc import AsyncIterator

from photosearch.common.errors import InvalidArgument
from photosearch_catalog import events
from photosearch_catalog.domain import ImportFailure, ImportRecord, ImportSummary, NewImage
from photosearch_catalog.intake import sha256_hex, validate_image
from photosearch_catalog.outbox import enqueue
from photosearch_catalog.service import CatalogService
from photosearch_catalog.validation import check_import_key, normalise_fields


class ImportService:
    def __init__(self, catalog: CatalogService) -> None:
        self.catalog = catalog

    async def import_records(self, records: AsyncIterator[ImportRecord]) -> ImportSummary:
        summary = ImportSummary()
        async for record in records:
            await self.import_record(record, summary)
        return summary

    async def import_record(self, record: ImportRecord, summary: ImportSummary) -> None:
        try:
            key = check_import_key(record.import_key)
            fields = normalise_fields(record.fields)
        except InvalidArgument as exc:
            summary.errors.append(ImportFailure(record.import_key, "", str(exc)))
            return
        repo = self.catalog.repo
        async with self.catalog.pool().connection() as conn:
            existing = await repo.get_item_by_import_key(conn, key)
            known = await repo.image_hashes(conn, existing.id) if existing else set()
        images = await self._new_images(record, key, known, summary)
        if record.images and not images and existing is None:
            return  # every photo was refused: no item without the photos it came with
        async with self.catalog.pool().connection() as conn, conn.transaction():
            item = await repo.get_item_by_import_key(conn, key, for_update=True)
            if item is None:
                item_id = str(uuid.uuid4())
                if await repo.insert_item_for_import(conn, item_id, fields, key):
                    await enqueue(conn, [events.item_upserted(item_id, fields)])
                    summary.items_created += 1
                else:  # another import created it a moment ago
                    item = await repo.get_item_by_import_key(conn, key, for_update=True)
            if item is not None:
                item_id = item.id
                summary.items_existing += 1
                if record.update_existing and fields != item.fields:
                    await repo.update_item(conn, item_id, fields)
                    await enqueue(conn, [events.item_upserted(item_id, fields)])
            for image in images:
                if await self.catalog.store_image(conn, item_id, image) is None:
                    summary.images_existing += 1
                else:
                    summary.images_added += 1

    async def _new_images(
        self, record: ImportRecord, key: str, known: set[str], summary: ImportSummary
    ) -> list[NewImage]:
        """The record's images not on the item yet, validated (bad ones reported)."""
        seen = set(known)
        accepted: list[NewImage] = []
        for image in record.images:
            sha = sha256_hex(image.data)
            if sha in seen:
                summary.images_existing += 1
                continue
            seen.add(sha)
            try:
                accepted.append(
                    await validate_image(
                        image.data, image.role, image.filename, self.catalog.limits, sha
                    )
                )
            except InvalidArgument as exc:
                summary.errors.append(ImportFailure(key, image.filename, str(exc)))
        return accepted
