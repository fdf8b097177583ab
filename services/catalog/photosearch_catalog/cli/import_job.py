"""The importer's remote sources: an s3://bucket/prefix, or a CSV of photo URLs, which
catalog fetches itself as an import job (docs/catalog.md, "Import jobs"); the command
starts the job and follows its progress until it is done."""

import csv
import io
import time
from collections.abc import Callable
from pathlib import Path

from photosearch.catalog.v1 import catalog_pb2, catalog_pb2_grpc

POLL_SECONDS = 1.0


def is_remote(source: str) -> bool:
    """An S3 prefix, or a CSV whose photos are URLs (an image_url column, or url without
    a file column)."""
    if source.startswith("s3://"):
        return True
    path = Path(source)
    if path.suffix.lower() != ".csv" or not path.is_file():
        return False
    with path.open(newline="", encoding="utf-8-sig") as f:
        header = [c.strip() for c in next(csv.reader(io.StringIO(f.readline())), [])]
    return "image_url" in header or ("url" in header and "file" not in header)


def run_job(
    stub: catalog_pb2_grpc.CatalogServiceStub,
    source: str,
    update: bool,
    quiet: bool,
    say: Callable[[str], None],
) -> catalog_pb2.ImportJob:
    request = catalog_pb2.StartImportRequest(update_existing=update, started_by="cli")
    if source.startswith("s3://"):
        request.source = source
    else:
        request.csv = Path(source).read_bytes()
    job = stub.StartImport(request)
    say(f"import {job.id}: {job.total} photos from {job.source}")
    shown = -1
    while job.state != "done":
        time.sleep(POLL_SECONDS)
        job = stub.GetImport(catalog_pb2.GetImportRequest(id=job.id))
        if not quiet and job.done + job.failed != shown:
            shown = job.done + job.failed
            say(f"  {shown} of {job.total} ({job.failed} failed)")
    say(f"done: {job.done} imported, {job.failed} failed")
    for failure in job.failures:
        say(f"  failed: {failure.location}: {failure.reason}")
    if job.failed > len(job.failures):
        say(f"  ... and {job.failed - len(job.failures)} more failed")
    return job
