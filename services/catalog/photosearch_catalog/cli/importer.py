"""Import photos into a running catalog through its gRPC API.

    python -m photosearch_catalog.cli.importer --catalog 127.0.0.1:50051 SOURCE

SOURCE is a folder of photos named by label, a folder with a dataset manifest.csv,
a manifest.csv, or a metadata CSV joined to image files (docs/catalog.md); or an
s3://bucket/prefix or a CSV of photo URLs, which catalog imports itself as a job that
this command follows (cli/import_job.py). The
import is idempotent: every record carries a stable import key and the catalog
keeps one copy of the same bytes per item, so a re-run adds nothing and an
interrupted run picks up where it stopped."""

import argparse
import hashlib
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from photosearch.catalog.v1 import catalog_pb2, catalog_pb2_grpc
from photosearch.common.channels import CHANNEL_OPTIONS
from photosearch.common.errors import InvalidArgument
from photosearch_catalog.cli.import_job import is_remote, run_job
from photosearch_catalog.cli.import_sources import plan_source
from photosearch_catalog.cli.plan import Exclusions, ImportPlan, PlannedItem
from photosearch_catalog.convert import fields_to_proto

try:
    from tqdm import tqdm
except ImportError:  # the server installs the catalog without its [cli] extra
    raise SystemExit("the importer needs tqdm: pip install 'photosearch-catalog[cli]'") from None

# One gRPC message stays well under the 64 MB limit: big items go in several records.
RECORD_BYTES = 16 * 1024 * 1024
LOCAL_MAX_FILE_BYTES = 48 * 1024 * 1024
ITEMS_PER_CALL = 200
RETRYABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}


def say(message: str) -> None:
    tqdm.write(message, file=sys.stdout)


@dataclass
class Totals:
    items_created: int = 0
    items_existing: int = 0
    images_added: int = 0
    images_existing: int = 0
    errors: list[tuple[str, str]] = field(default_factory=list)  # (where, message)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def add(self, summary: catalog_pb2.ImportSummary) -> None:
        self.items_created += summary.items_created
        self.items_existing += summary.items_existing
        self.images_added += summary.images_added
        self.images_existing += summary.images_existing
        for error in summary.errors:
            self.errors.append((error.filename or error.import_key, error.message))


def records_of(
    items: Sequence[PlannedItem],
    exclusions: Exclusions,
    totals: Totals,
    progress: Callable[[int], None],
    update_existing: bool = False,
) -> Iterator[catalog_pb2.ImportRecord]:
    """Records read lazily from disk; an item whose photos exceed RECORD_BYTES is
    split into several records with the same key (they add to one item)."""
    for item in items:
        proto = fields_to_proto(item.fields)
        batch: list[catalog_pb2.ImportImage] = []
        size = 0
        sent = False
        for image in item.images:
            try:
                if image.path.stat().st_size > LOCAL_MAX_FILE_BYTES:
                    raise OSError(f"larger than {LOCAL_MAX_FILE_BYTES // 2**20} MB")
                data = image.path.read_bytes()
            except OSError as exc:
                totals.errors.append((str(image.path), f"cannot read the file: {exc}"))
                progress(1)
                continue
            if exclusions.excludes_hash(hashlib.sha256(data).hexdigest()):
                totals.skipped.append((str(image.path), "on the exclusion list (by hash)"))
                progress(1)
                continue
            if batch and size + len(data) > RECORD_BYTES:
                yield catalog_pb2.ImportRecord(
                    import_key=item.import_key, item=proto, images=batch,
                    update_existing=update_existing,
                )  # fmt: skip
                sent, batch, size = True, [], 0
            batch.append(
                catalog_pb2.ImportImage(data=data, filename=image.path.name, role=int(image.role))  # type: ignore[arg-type]
            )
            size += len(data)
            progress(1)
        if batch or not (sent or item.images):  # not when every photo was skipped
            yield catalog_pb2.ImportRecord(
                import_key=item.import_key, item=proto, images=batch,
                update_existing=update_existing,
            )  # fmt: skip


def open_stub(target: str) -> tuple[grpc.Channel, catalog_pb2_grpc.CatalogServiceStub]:
    channel = grpc.insecure_channel(target, options=CHANNEL_OPTIONS)
    return channel, catalog_pb2_grpc.CatalogServiceStub(channel)


def run_import(
    stub: catalog_pb2_grpc.CatalogServiceStub,
    plan: ImportPlan,
    exclusions: Exclusions | None = None,
    *,
    update_existing: bool = False,
    show_progress: bool = True,
    items_per_call: int = ITEMS_PER_CALL,
    attempts: int = 5,
) -> Totals:
    """Send the plan in calls of `items_per_call` items; a call that fails on a
    transient error is sent again (safe: the import is idempotent)."""
    exclusions = exclusions or Exclusions()
    totals = Totals(skipped=list(plan.skipped))
    bar = tqdm(total=plan.image_count, unit="img", disable=not show_progress, file=sys.stdout)
    try:
        for start in range(0, len(plan.items), items_per_call):
            chunk = plan.items[start : start + items_per_call]
            for attempt in range(1, attempts + 1):
                done_before = bar.n
                noted = len(totals.errors), len(totals.skipped)
                try:
                    summary = stub.ImportItems(
                        records_of(chunk, exclusions, totals, bar.update, update_existing)
                    )
                    break
                except grpc.RpcError as exc:
                    code = exc.code()  # type: ignore[attr-defined]
                    if code not in RETRYABLE or attempt == attempts:
                        raise
                    say(f"catalog unavailable ({exc.details()}); retrying")  # type: ignore[attr-defined]
                    bar.update(done_before - bar.n)  # the chunk is read again
                    del totals.errors[noted[0] :], totals.skipped[noted[1] :]
                    time.sleep(min(2**attempt, 10))
            totals.add(summary)
            bar.set_postfix(added=totals.images_added, existing=totals.images_existing,
                            errors=len(totals.errors))  # fmt: skip
    finally:
        bar.close()
    return totals


def report(totals: Totals, *, limit: int = 20) -> None:
    say(
        f"items: {totals.items_created} created, {totals.items_existing} already there; "
        f"images: {totals.images_added} added, {totals.images_existing} already there; "
        f"{len(totals.errors)} failed, {len(totals.skipped)} skipped"
    )
    for title, rows in (("failed", totals.errors), ("skipped", totals.skipped)):
        for where, why in rows[:limit]:
            say(f"  {title}: {where}: {why}")
        if len(rows) > limit:
            say(f"  ... and {len(rows) - limit} more {title}")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m photosearch_catalog.cli.importer",
        description="Import a folder, a metadata CSV or a dataset manifest into the catalog.",
    )
    parser.add_argument(
        "source",
        help="folder, manifest.csv or metadata CSV; s3://bucket/prefix or a CSV of photo URLs",
    )
    parser.add_argument("--catalog", default="127.0.0.1:50051", help="catalog gRPC address")
    parser.add_argument("--format", choices=["auto", "folder", "csv", "manifest"], default="auto")
    parser.add_argument(
        "--exclude", type=Path, action="append", default=[],
        help="file listing images to skip: glob patterns or sha256 hashes, one a line",
    )  # fmt: skip
    parser.add_argument("--images", type=Path, help="folder the CSV's file paths start from")
    parser.add_argument(
        "--update", action="store_true", help="overwrite the fields of items already imported"
    )
    parser.add_argument("--dry-run", action="store_true", help="show the plan, import nothing")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if is_remote(args.source) and args.format == "auto" and not args.dry_run:
        return follow_job(args)
    try:
        exclusions = Exclusions.from_files(args.exclude)
        plan = plan_source(Path(args.source), exclusions, args.format, args.images)
    except (InvalidArgument, OSError) as exc:
        say(f"error: {exc}")
        return 2
    say(f"{args.source}: {len(plan.items)} items, {plan.image_count} images")
    if args.dry_run:
        for item in plan.items:
            variant = f" [{item.fields.variant}]" if item.fields.variant else ""
            say(f"  {item.fields.name}{variant}: {len(item.images)} image(s) ({item.import_key})")
        return 0
    return import_and_report(
        args.catalog,
        lambda stub: run_import(
            stub, plan, exclusions, update_existing=args.update, show_progress=not args.quiet
        ),
    )


def follow_job(args: argparse.Namespace) -> int:
    """Catalog fetches the photos (an S3 prefix, photo URLs): start the job, follow it."""
    channel, stub = open_stub(args.catalog)
    try:
        job = run_job(stub, args.source, args.update, args.quiet, say)
    except grpc.RpcError as exc:
        say(f"error: the catalog at {args.catalog} answered {exc.code().name}: {exc.details()}")  # type: ignore[attr-defined]
        return 1
    finally:
        channel.close()
    return 1 if job.failed else 0


def import_and_report(
    target: str, work: Callable[[catalog_pb2_grpc.CatalogServiceStub], Totals | None]
) -> int:
    """Run `work` against the catalog at `target` and print its totals (None: nothing
    was imported); the exit code of the command-line importers."""
    channel, stub = open_stub(target)
    try:
        totals = work(stub)
    except grpc.RpcError as exc:
        say(f"error: the catalog at {target} answered {exc.code().name}: {exc.details()}")  # type: ignore[attr-defined]
        return 1
    finally:
        channel.close()
    if totals is None:
        return 0
    report(totals)
    return 1 if totals.errors else 0


if __name__ == "__main__":
    sys.exit(main())
