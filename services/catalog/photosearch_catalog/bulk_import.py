"""Bulk import: one record per item, idempotent on the record's import key and
each image's sha256, so a re-run adds nothing and an interrupted run resumes.

Records are taken in batches (up to BATCH_RECORDS records or BATCH_BYTES of
photos): one query finds what the catalog already has, the new photos are
validated in parallel threads, and everything new is written in one transaction
(items, images, bytes, events). A batch with nothing new writes nothing. A bad
image or record is reported in the summary and the import goes on."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from psycopg import AsyncConnection

from photosearch.common.errors import InvalidArgument
from photosearch_catalog import events
from photosearch_catalog.domain import (
    ImportFailure,
    ImportImage,
    ImportRecord,
    ImportSummary,
    ItemFields,
    NewImage,
)
from photosearch_catalog.intake import sha256_hex, validate_image
from photosearch_catalog.metrics import CatalogMetrics
from photosearch_catalog.outbox import Event, enqueue
from photosearch_catalog.service import CatalogService
from photosearch_catalog.validation import check_import_key, normalise_fields

BATCH_RECORDS = 64
BATCH_BYTES = 32 * 1024 * 1024


@dataclass
class _Planned:
    record: ImportRecord
    key: str
    fields: ItemFields
    images: list[NewImage] = field(default_factory=list)  # new and valid

    def needs_update(self, current: ItemFields) -> bool:
        return self.record.update_existing and current != self.fields


async def _batches(records: AsyncIterator[ImportRecord]) -> AsyncIterator[list[ImportRecord]]:
    batch: list[ImportRecord] = []
    size = 0
    async for record in records:
        batch.append(record)
        size += sum(len(image.data) for image in record.images)
        if len(batch) >= BATCH_RECORDS or size >= BATCH_BYTES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


class ImportService:
    def __init__(self, catalog: CatalogService, metrics: CatalogMetrics | None = None) -> None:
        self.catalog = catalog
        self.metrics = metrics or CatalogMetrics()

    async def import_records(self, records: AsyncIterator[ImportRecord]) -> ImportSummary:
        summary = ImportSummary()
        self.metrics.imports.inc()
        async for batch in _batches(records):
            part = ImportSummary()
            # Per batch: a slow client holds no connection while it sends.
            async with self.catalog.pool().connection() as conn:
                await self._import_batch(conn, batch, part)
            self.metrics.imported(part)  # once committed: a failed batch counts nothing
            summary.add(part)
        return summary

    async def _import_batch(
        self, conn: AsyncConnection, records: list[ImportRecord], summary: ImportSummary
    ) -> None:
        planned: list[_Planned] = []
        for record in records:
            try:
                key = check_import_key(record.import_key)
                fields = normalise_fields(record.fields)
            except InvalidArgument as exc:
                summary.errors.append(ImportFailure(record.import_key, "", str(exc)))
                continue
            planned.append(_Planned(record, key, fields))
        state = await self.catalog.repo.import_state(conn, [p.key for p in planned])
        known = {key: hashes for key, (_, _, hashes) in state.items()}
        checks: list[tuple[_Planned, ImportImage, str]] = []
        for plan in planned:
            seen = known.setdefault(plan.key, set())
            for image in plan.record.images:
                sha = sha256_hex(image.data)
                if sha in seen:
                    summary.images_existing += 1
                    continue
                seen.add(sha)
                checks.append((plan, image, sha))
        results = await asyncio.gather(
            *(
                validate_image(image.data, image.role, image.filename, self.catalog.limits, sha)
                for _, image, sha in checks
            ),
            return_exceptions=True,
        )
        for (plan, image, _), result in zip(checks, results, strict=True):
            if isinstance(result, InvalidArgument):
                summary.errors.append(ImportFailure(plan.key, image.filename, str(result)))
            elif isinstance(result, BaseException):
                raise result
            else:
                plan.images.append(result)  # in the order they were sent
        writes = [
            p
            for p in planned
            if p.images
            or (p.key not in state and not p.record.images)  # an item without photos
            or (p.key in state and p.needs_update(state[p.key][1]))
        ]
        if writes:
            async with conn.transaction():
                stored = await self._write(conn, writes, state, summary)
            self.catalog.on_stored(stored)
        summary.items_existing += sum(1 for p in planned if p.key in state)

    async def _write(
        self,
        conn: AsyncConnection,
        writes: list[_Planned],
        state: dict[str, tuple[str, ItemFields, set[str]]],
        summary: ImportSummary,
    ) -> list[str]:
        """Write the batch; the ids of the images stored."""
        repo = self.catalog.repo
        outbox: list[Event] = []
        item_ids = {key: item_id for key, (item_id, _, _) in state.items()}
        new_items = {}
        for plan in writes:
            if plan.key not in item_ids and plan.key not in new_items:
                new_items[plan.key] = (str(uuid.uuid4()), plan.fields, plan.key)
        if new_items:
            inserted = await repo.insert_items_for_import(conn, list(new_items.values()))
            for item_id, fields, key in new_items.values():
                if item_id in inserted:
                    item_ids[key] = item_id
                    outbox.append(events.item_upserted(item_id, fields))
                    summary.items_created += 1
            taken = [key for key in new_items if key not in item_ids]
            if taken:  # another import created them a moment ago
                for key, (item_id, _, _) in (await repo.import_state(conn, taken)).items():
                    item_ids[key] = item_id
        for plan in writes:
            if plan.key in state and plan.needs_update(state[plan.key][1]):
                await repo.update_item(conn, item_ids[plan.key], plan.fields)
                outbox.append(events.item_upserted(item_ids[plan.key], plan.fields))
        rows = [
            (str(uuid.uuid4()), item_ids[plan.key], image)
            for plan in writes
            if plan.key in item_ids
            for image in plan.images
        ]
        stored = await repo.insert_images(conn, rows) if rows else []
        data = {image_id: image.data for image_id, _, image in rows}
        await self.catalog.store.put(conn, [(s.id, data[s.id]) for s in stored])
        outbox.extend(events.image_added(s) for s in stored)
        await enqueue(conn, outbox)
        summary.images_added += len(stored)
        summary.images_existing += len(rows) - len(stored)
        return [s.id for s in stored]
