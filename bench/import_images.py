"""Benchmark: import 1,000 generated photos into a real catalog through its gRPC
API, then re-run the import (it must add nothing). Side by side, in the same run:
the same kind of photos added one by one with CreateItem + AddImage. Also: how
long the outbox relay needs to publish every ImageAdded event to JetStream.

    make bench-import            # = .venv/bin/python bench/import_images.py
    .venv/bin/python bench/import_images.py --images 1000 --unary 200

Starts its own embedded PostgreSQL, NATS and catalog process in a temp dir."""

import argparse
import asyncio
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc
from cryptography.fernet import Fernet
from grpc_health.v1 import health_pb2, health_pb2_grpc
from PIL import Image, ImageDraw

from photosearch.catalog.v1 import catalog_pb2
from photosearch.common import subjects
from photosearch_catalog.cli.import_sources import plan_source
from photosearch_catalog.cli.importer import open_stub, run_import
from photosearch_catalog.cli.plan import Exclusions
from photosearch_devstack.nats_server import NatsServer
from photosearch_devstack.ports import free_port
from photosearch_devstack.postgres import EmbeddedPostgres

RARITIES = ["", "_ur", "_sr", "_scr", "_pscr"]


_GRAIN: dict[tuple[int, int], Image.Image] = {}


def photo(seed: int, size: tuple[int, int] = (640, 480)) -> Image.Image:
    """A photo-like picture (tinted gradient, shapes, sensor grain) unique per seed."""
    rng = random.Random(seed)
    if size not in _GRAIN:  # grain is costly to make: once, then shifted per photo
        _GRAIN[size] = Image.effect_noise((size[0] * 2, size[1] * 2), 24).convert("RGB")
    image = Image.linear_gradient("L").resize(size).convert("RGB")
    tint = Image.new("RGB", size, tuple(rng.randrange(256) for _ in range(3)))
    image = Image.blend(image, tint, 0.6)
    draw = ImageDraw.Draw(image)
    for _ in range(12):
        x, y = rng.randrange(size[0]), rng.randrange(size[1])
        r = rng.randrange(20, 140)
        colour = tuple(rng.randrange(256) for _ in range(3))
        shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        shape((x - r, y - r, x + r, y + r), fill=colour)
    dx, dy = rng.randrange(size[0]), rng.randrange(size[1])
    grain = _GRAIN[size].crop((dx, dy, dx + size[0], dy + size[1]))
    return Image.blend(image, grain, 0.15)


def generate(folder: Path, count: int, grouped: int = 50, per_group: int = 4) -> int:
    """`count` JPEGs: most as single files named by label, some grouped in sub-folders."""
    folder.mkdir(parents=True, exist_ok=True)
    total_bytes = 0
    singles = count - grouped * per_group
    for n in range(count):
        if n < singles:
            name = f"BNCH-EN{n % 1000:03d}_figure_{n:04d}{RARITIES[n % len(RARITIES)]}.jpg"
            path = folder / name
        else:
            group = (n - singles) // per_group
            path = folder / f"boxed_set_{group:03d}" / f"photo_{n % per_group}.jpg"
            path.parent.mkdir(exist_ok=True)
        photo(n).save(path, "JPEG", quality=88)
        total_bytes += path.stat().st_size
    return total_bytes


def start_catalog(
    pg: EmbeddedPostgres, nats: NatsServer, log: Path
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {
        **os.environ,
        "CATALOG_GRPC_PORT": str(port),
        "CATALOG_METRICS_PORT": "0",  # a free port: several services share this host
        "CATALOG_DATABASE_URL": pg.create_database("catalog"),
        "CATALOG_NATS_URL": nats.url,
        "CATALOG_SETTINGS_KEY": Fernet.generate_key().decode(),
        "CATALOG_LOG_FORMAT": "json",
        "CATALOG_LOG_LEVEL": "warning",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "photosearch_catalog"],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    address = f"127.0.0.1:{port}"
    channel = grpc.insecure_channel(address)
    health = health_pb2_grpc.HealthStub(channel)
    deadline = time.monotonic() + 60
    while True:
        try:
            reply = health.Check(health_pb2.HealthCheckRequest(), timeout=1)
            if reply.status == health_pb2.HealthCheckResponse.SERVING:
                break
        except grpc.RpcError:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            raise RuntimeError(f"catalog did not start; see {log}")
        time.sleep(0.1)
    channel.close()
    return process, address


async def stream_messages(nats_url: str, stream: str = subjects.CATALOG_STREAM) -> int:
    from photosearch.common import nats as nats_helpers

    nc = await nats_helpers.connect(nats_url, "bench")
    try:
        info = await nc.jetstream().stream_info(stream)
        return int(info.state.messages)
    finally:
        await nc.close()


def wait_for_events(nats_url: str, expected: int, timeout: float = 120) -> float:
    """Seconds until the CATALOG stream holds `expected` messages."""
    started = time.perf_counter()
    while asyncio.run(stream_messages(nats_url)) < expected:
        if time.perf_counter() - started > timeout:
            raise TimeoutError(f"fewer than {expected} events after {timeout} s")
        time.sleep(0.1)
    return time.perf_counter() - started


def unary_adds(address: str, folder: Path, count: int) -> float:
    """CreateItem + AddImage per photo, one call after the other; seconds taken."""
    files = sorted(folder.glob("*.jpg"))[:count]
    channel, stub = open_stub(address)
    started = time.perf_counter()
    for path in files:
        item = stub.CreateItem(catalog_pb2.CreateItemRequest(item=catalog_pb2.Item(name=path.stem)))
        stub.AddImage(catalog_pb2.AddImageRequest(item_id=item.id, data=path.read_bytes()))
    elapsed = time.perf_counter() - started
    channel.close()
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--unary", type=int, default=200, help="photos added one by one")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-import-") as tmp:
        root = Path(tmp)
        photos = root / "photos"
        t0 = time.perf_counter()
        total_bytes = generate(photos, args.images)
        took = time.perf_counter() - t0
        print(f"generated {args.images} JPEGs ({total_bytes / 1e6:.1f} MB) in {took:.1f} s")

        pg = EmbeddedPostgres(root / "pg").start()
        nats = NatsServer(root / "nats").start()
        process, address = start_catalog(pg, nats, root / "catalog.log")
        try:
            channel, stub = open_stub(address)
            started = time.perf_counter()
            plan = plan_source(photos, Exclusions())
            first = run_import(stub, plan, show_progress=False)
            first_s = time.perf_counter() - started
            images = stub.CountImages(catalog_pb2.CountImagesRequest()).count
            assert first.images_added == images == args.images, (first, images)
            assert not first.errors, first.errors
            events_expected = first.items_created + first.images_added
            relay_lag = wait_for_events(nats.url, events_expected)

            started = time.perf_counter()
            second = run_import(stub, plan_source(photos, Exclusions()), show_progress=False)
            second_s = time.perf_counter() - started
            assert (second.items_created, second.images_added) == (0, 0), second
            assert stub.CountImages(catalog_pb2.CountImagesRequest()).count == images
            channel.close()

            unary_s = unary_adds(address, photos, args.unary)
        finally:
            process.terminate()
            process.wait(30)
            nats.stop()
            pg.stop(mode="fast")

    mb = total_bytes / 1e6
    rows = [
        (
            "import (ImportItems stream)",
            f"{first.items_created} created",
            f"{first.images_added} added",
            first_s,
            args.images,
        ),
        (
            "re-run of the same import",
            f"{second.items_existing} existing, 0 created",
            f"{second.images_existing} existing, 0 added",
            second_s,
            args.images,
        ),
        (
            "CreateItem + AddImage, one by one",
            f"{args.unary} created",
            f"{args.unary} added",
            unary_s,
            args.unary,
        ),
    ]
    print()
    print("| run | items | images | seconds | images/s |")
    print("|---|---:|---:|---:|---:|")
    for name, item_note, image_note, seconds, count in rows:
        print(f"| {name} | {item_note} | {image_note} | {seconds:.2f} | {count / seconds:.0f} |")
    print()
    print(f"photos: {args.images} JPEGs 640x480, {mb:.1f} MB; first import {mb / first_s:.1f} MB/s")
    print(
        f"outbox: all {events_expected} events of the import were in JetStream "
        f"{relay_lag:.2f} s after the import returned"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
