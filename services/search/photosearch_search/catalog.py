"""What search needs from catalog (how many images, all of their ids, and what answers
show of items it has not heard of through events), behind a small interface so the
logic does not care how catalog is reached."""

import asyncio
from collections.abc import AsyncIterator
from typing import Protocol

import grpc

from photosearch.catalog.v1 import catalog_pb2, catalog_pb2_grpc
from photosearch.common.errors import Unavailable
from photosearch_search.domain import ImageRef, ItemSummary


class CatalogReader(Protocol):
    async def count_images(self) -> int:
        """Images in the catalog right now."""

    def image_refs(self, batch_size: int) -> AsyncIterator[list[ImageRef]]:
        """Every image id with its item id, in batches."""

    async def item_summaries(self, item_ids: list[str]) -> dict[str, ItemSummary]:
        """What answers show of these items (items catalog no longer has are absent)."""


class GrpcCatalog:
    """CatalogReader over catalog's gRPC API."""

    def __init__(self, channel: grpc.aio.Channel, timeout: float) -> None:
        self._stub = catalog_pb2_grpc.CatalogServiceStub(channel)  # type: ignore[no-untyped-call]
        self._timeout = timeout

    async def count_images(self) -> int:
        try:
            reply = await self._stub.CountImages(
                catalog_pb2.CountImagesRequest(), timeout=self._timeout
            )
        except grpc.aio.AioRpcError as exc:
            raise Unavailable(f"catalog did not answer CountImages: {exc.details()}") from exc
        return int(reply.count)

    async def item_summaries(self, item_ids: list[str]) -> dict[str, ItemSummary]:
        try:
            reply = await self._stub.BatchGetItems(
                catalog_pb2.BatchGetItemsRequest(ids=item_ids), timeout=self._timeout
            )
        except grpc.aio.AioRpcError as exc:
            raise Unavailable(f"catalog did not answer BatchGetItems: {exc.details()}") from exc
        return {
            i.id: ItemSummary(i.name, i.series, i.maker, i.year, i.variant) for i in reply.items
        }

    async def image_refs(self, batch_size: int) -> AsyncIterator[list[ImageRef]]:
        call = self._stub.StreamImageRefs(catalog_pb2.StreamImageRefsRequest(batch_size=batch_size))
        stream = call.__aiter__()
        try:
            while True:
                try:
                    # A deadline per batch, not for the whole walk (which may take minutes).
                    batch = await asyncio.wait_for(stream.__anext__(), self._timeout)
                except StopAsyncIteration:
                    return
                except (grpc.aio.AioRpcError, TimeoutError) as exc:
                    detail = exc.details() if isinstance(exc, grpc.aio.AioRpcError) else "timeout"
                    raise Unavailable(f"catalog's StreamImageRefs broke off: {detail}") from exc
                yield [ImageRef(r.image_id, r.item_id) for r in batch.refs]
        finally:
            call.cancel()
