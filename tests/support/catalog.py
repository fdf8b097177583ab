"""A real catalog server (gRPC on a free port, in the test's loop) for the catalog
tests, small images whose bytes differ per seed, and a reader of the catalog's events."""

import asyncio
import io
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.fernet import Fernet
from nats.js.api import DeliverPolicy
from PIL import Image

from photosearch.catalog.v1 import catalog_pb2, catalog_pb2_grpc
from photosearch.common import nats as nats_helpers
from photosearch.common import subjects
from photosearch.events.v1 import events_pb2
from photosearch_catalog.config import CatalogSettings
from photosearch_catalog.server import build_server
from tests.support.services import RunningService, start_service

EVENT_TYPES = {
    subjects.IMAGE_ADDED: events_pb2.ImageAdded,
    subjects.IMAGE_DELETED: events_pb2.ImageDeleted,
    subjects.ITEM_UPSERTED: events_pb2.ItemUpserted,
    subjects.ITEM_DELETED: events_pb2.ItemDeleted,
}


def make_settings(database_url: str, nats_url: str, **overrides) -> CatalogSettings:
    values = {
        "grpc_port": 0,
        "database_url": database_url,
        "nats_url": nats_url,
        "settings_key": Fernet.generate_key().decode(),
        "outbox_poll_seconds": 0.2,
        "outbox_standby_seconds": 0.2,
        "shutdown_grace_seconds": 1.0,
        **overrides,
    }
    return CatalogSettings(**values)


@dataclass
class Catalog:
    service: RunningService
    stub: catalog_pb2_grpc.CatalogServiceStub
    settings: CatalogSettings

    async def item(self, name: str = "Dark Magician", **fields) -> catalog_pb2.Item:
        return await self.stub.CreateItem(
            catalog_pb2.CreateItemRequest(item=catalog_pb2.Item(name=name, **fields))
        )

    async def image(self, item_id: str, data: bytes, **kwargs) -> catalog_pb2.AddImageResponse:
        return await self.stub.AddImage(
            catalog_pb2.AddImageRequest(item_id=item_id, data=data, **kwargs)
        )


async def start_catalog(settings: CatalogSettings) -> tuple[RunningService, Catalog]:
    service = await start_service(build_server, settings)
    channel = service.channel()
    return service, Catalog(service, catalog_pb2_grpc.CatalogServiceStub(channel), settings)


def image_bytes(
    seed: int = 0, fmt: str = "PNG", size: tuple[int, int] = (64, 48), **save_args
) -> bytes:
    """A small image whose bytes differ per seed."""
    image = Image.new("RGB", size, ((seed * 37) % 256, (seed * 91) % 256, (seed * 13) % 256))
    image.putpixel((seed % size[0], 0), (255 - seed % 256, 0, 0))
    out = io.BytesIO()
    image.save(out, fmt, **save_args)
    return out.getvalue()


class EventReader:
    """Reads the CATALOG stream from a point in time, keeping the events that match."""

    def __init__(self, nats_url: str, deliver_policy: DeliverPolicy = DeliverPolicy.NEW) -> None:
        self.nats_url = nats_url
        self.deliver_policy = deliver_policy
        self.nc = None
        self.sub = None

    async def start(self) -> "EventReader":
        self.nc = await nats_helpers.connect(self.nats_url, "catalog-test-reader")
        js = self.nc.jetstream()
        await nats_helpers.ensure_streams(js, nats_helpers.Topology())
        self.sub = await js.subscribe(
            "catalog.>",
            stream=subjects.CATALOG_STREAM,
            ordered_consumer=True,
            deliver_policy=self.deliver_policy,
        )
        return self

    async def collect(
        self, keep: Callable[[str, object], bool], count: int, timeout: float = 20.0
    ) -> list[tuple[str, object]]:
        """The next `count` matching events (subject, message), in stream order."""
        found: list[tuple[str, object]] = []
        deadline = asyncio.get_running_loop().time() + timeout
        while len(found) < count:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                break
            try:
                msg = await self.sub.next_msg(timeout=min(remaining, 1.0))
            except TimeoutError:
                continue
            event = EVENT_TYPES[msg.subject].FromString(msg.data)
            if keep(msg.subject, event):
                found.append((msg.subject, event))
        return found

    async def quiet(self, keep: Callable[[str, object], bool], seconds: float) -> list:
        """Matching events arriving within `seconds` (to prove nothing more comes)."""
        extra = []
        deadline = asyncio.get_running_loop().time() + seconds
        while (remaining := deadline - asyncio.get_running_loop().time()) > 0:
            try:
                msg = await self.sub.next_msg(timeout=remaining)
            except TimeoutError:
                break
            event = EVENT_TYPES[msg.subject].FromString(msg.data)
            if keep(msg.subject, event):
                extra.append((msg.subject, event))
        return extra

    async def close(self) -> None:
        if self.nc is not None:
            await self.nc.close()
