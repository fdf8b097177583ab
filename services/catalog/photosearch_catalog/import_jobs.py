"""Import jobs: an import from an S3 prefix or a CSV of photo URLs, run inside catalog.
Starting one lists every photo to fetch (its entries) in one transaction; the runner
(import_runner.py) then fetches and imports them, recording each entry's outcome, so
the job's progress survives a restart and the import goes on where it was."""

import csv
import io
import uuid
from collections.abc import Callable
from pathlib import PurePosixPath

from psycopg_pool import AsyncConnectionPool

from photosearch.common.errors import InvalidArgument, NotFound
from photosearch_catalog.domain import ImportEntry, ImportJob
from photosearch_catalog.import_fetch import S3Location, S3Store
from photosearch_catalog.import_job_repository import ImportJobRepository
from photosearch_catalog.record_fields import label_fields, row_fields
from photosearch_catalog.validation import parse_id

MAX_ENTRIES = 100_000
MAX_CSV_BYTES = 16 * 1024 * 1024
FAILURES_SHOWN = 50


def plan_s3(where: S3Location, keys: list[str]) -> list[ImportEntry]:
    """Like a folder import: a photo right under the prefix is an item named by its file;
    each folder below it is one item named by the folder, with all its photos."""
    entries = []
    for key in keys:
        relative = PurePosixPath(key[len(where.prefix) :])
        if len(relative.parts) == 1:
            import_key, fields = f"s3:{where.bucket}/{key}", label_fields(relative.stem)
        else:
            folder = relative.parent
            import_key = f"s3:{where.bucket}/{where.prefix}{folder.as_posix()}/"
            fields = label_fields(folder.name)
        entries.append(ImportEntry(import_key, f"s3://{where.bucket}/{key}", fields))
    return entries


def plan_csv(data: bytes) -> list[ImportEntry]:
    """A CSV with a photo URL per row (`image_url`, or `url` when it has no `image_url`)
    and the item's fields (name, series, maker, year, variant, tags, key, ...). Rows with
    the same `key` (or, without one, the same name) are one item."""
    if len(data) > MAX_CSV_BYTES:
        raise InvalidArgument(f"the CSV is larger than {MAX_CSV_BYTES} bytes")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidArgument("the CSV is not UTF-8 text") from None
    reader = csv.DictReader(io.StringIO(text))
    columns = [(c or "").strip() for c in reader.fieldnames or []]
    column = "image_url" if "image_url" in columns else "url" if "url" in columns else ""
    if not column:
        raise InvalidArgument("the CSV needs an 'image_url' (or 'url') column with photo URLs")
    entries = []
    for number, raw in enumerate(reader, start=2):
        row = {(k or "").strip(): (v or "").strip() for k, v in raw.items()}
        url = row.pop(column, "")
        if not url:
            continue
        where = f"line {number}"
        if not row.get("name"):
            raise InvalidArgument(f"{where}: every row needs a name")
        fields = row_fields(row, where)
        key = row.get("key") or fields.name
        entries.append(ImportEntry(f"urls:{key}", url, fields))
        if len(entries) > MAX_ENTRIES:
            raise InvalidArgument(f"at most {MAX_ENTRIES} photos per import")
    if not entries:
        raise InvalidArgument("the CSV names no photo URL")
    return entries


class ImportJobService:
    def __init__(
        self,
        pool: Callable[[], AsyncConnectionPool],
        s3: Callable[[], S3Store],
        on_started: Callable[[], None] = lambda: None,
    ) -> None:
        self._pool_of = pool
        self._s3_of = s3
        self.on_started = on_started
        self.repo = ImportJobRepository()

    async def start(
        self, source: str, csv_data: bytes, update_existing: bool, started_by: str
    ) -> ImportJob:
        if bool(source) == bool(csv_data):
            raise InvalidArgument("give either an s3://bucket/prefix source or a CSV of URLs")
        if source:
            try:
                where = S3Location.parse(source.strip())
            except ValueError as exc:
                raise InvalidArgument(str(exc)) from None
            try:
                keys = await self._s3_of().list_images(where, MAX_ENTRIES)
            except Exception as exc:  # botocore: no such bucket, access denied, no endpoint
                raise InvalidArgument(f"cannot list {source}: {exc}") from None
            if len(keys) > MAX_ENTRIES:
                raise InvalidArgument(f"more than {MAX_ENTRIES} photos under {source}")
            if not keys:
                raise InvalidArgument(f"no photo under {source}")
            entries, label = plan_s3(where, keys), source.strip()
        else:
            entries, label = plan_csv(csv_data), "CSV of photo URLs"
        job_id = str(uuid.uuid4())
        async with self._pool_of().connection() as conn, conn.transaction():
            await self.repo.insert_job(conn, job_id, label, update_existing, started_by, entries)
        self.on_started()
        return await self.get(job_id)

    async def get(self, job_id: str) -> ImportJob:
        job_id = parse_id(job_id, "import id")
        async with self._pool_of().connection() as conn:
            job = await self.repo.get_job(conn, job_id, FAILURES_SHOWN)
        if job is None:
            raise NotFound(f"no import with id {job_id}")
        return job

    async def recent(self, limit: int) -> list[ImportJob]:
        async with self._pool_of().connection() as conn:
            return await self.repo.recent_jobs(conn, max(1, min(limit or 20, 100)), FAILURES_SHOWN)
