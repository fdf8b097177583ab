"""Contributions wait for review: a pending item is stored but not listed, a pending image
is stored but not announced (no event, not walked by a rebuild, not counted), approving
announces them exactly once, and rejecting is deleting."""

import grpc
import pytest

from photosearch.catalog.v1 import catalog_pb2
from photosearch.common import subjects
from tests.support.catalog import Catalog, EventReader, image_bytes


def about(item_id: str):
    def keep(subject: str, event) -> bool:
        return getattr(event, "item_id", None) == item_id

    return keep


async def contribute(catalog: Catalog, name: str, by: str = "oidc:alice") -> catalog_pb2.Item:
    return await catalog.stub.CreateItem(
        catalog_pb2.CreateItemRequest(item=catalog_pb2.Item(name=name), pending=True, added_by=by)
    )


async def refs(catalog: Catalog) -> set[str]:
    found = set()
    async for batch in catalog.stub.StreamImageRefs(catalog_pb2.StreamImageRefsRequest()):
        found.update(ref.image_id for ref in batch.refs)
    return found


async def listed(catalog: Catalog, include_pending: bool = False) -> list[str]:
    reply = await catalog.stub.ListItems(
        catalog_pb2.ListItemsRequest(include_pending=include_pending)
    )
    return [item.name for item in reply.items]


async def test_a_pending_item_and_its_photo_are_hidden_until_approved(
    catalog: Catalog, events: EventReader
) -> None:
    item = await contribute(catalog, "Contributed figure")
    assert item.pending and item.added_by == "oidc:alice"
    # A photo of a pending item is pending whoever adds it.
    added = await catalog.image(item.id, image_bytes(1), added_by="admin-token")
    assert added.image.pending and added.image.added_by == "admin-token"
    assert await listed(catalog) == []
    assert await listed(catalog, include_pending=True) == ["Contributed figure"]
    assert await refs(catalog) == set()
    count = await catalog.stub.CountImages(catalog_pb2.CountImagesRequest())
    assert count.count == 0
    public = await catalog.stub.ListImages(catalog_pb2.ListImagesRequest(item_id=item.id))
    assert list(public.images) == []
    assert await events.quiet(about(item.id), 1.5) == []  # nothing announced

    queue = await catalog.stub.ListContributions(catalog_pb2.ListContributionsRequest())
    assert queue.total == 1
    (entry,) = queue.contributions
    assert entry.item.id == item.id and [i.id for i in entry.pending_images] == [added.image.id]

    approved = await catalog.stub.ApproveItem(catalog_pb2.ApproveItemRequest(id=item.id))
    assert not approved.pending and approved.image_count == 1
    assert approved.cover_image_id == added.image.id
    got = await events.collect(about(item.id), 2)
    assert [subject for subject, _ in got] == [subjects.ITEM_UPSERTED, subjects.IMAGE_ADDED]
    assert got[1][1].image_id == added.image.id
    assert await refs(catalog) == {added.image.id}
    assert await listed(catalog) == ["Contributed figure"]
    # Approving again announces nothing more.
    await catalog.stub.ApproveItem(catalog_pb2.ApproveItemRequest(id=item.id))
    assert await events.quiet(about(item.id), 1.5) == []
    queue = await catalog.stub.ListContributions(catalog_pb2.ListContributionsRequest())
    assert queue.total == 0 and list(queue.contributions) == []


async def test_a_pending_photo_of_an_approved_item(catalog: Catalog, events: EventReader) -> None:
    item = await catalog.item("Official figure")
    official = await catalog.image(item.id, image_bytes(1))
    await events.collect(about(item.id), 2)  # its upsert and its image
    photo = await catalog.image(item.id, image_bytes(2), pending=True, added_by="oidc:bob")
    assert photo.image.pending
    shown = await catalog.stub.GetItem(catalog_pb2.GetItemRequest(id=item.id))
    assert shown.image_count == 1 and shown.cover_image_id == official.image.id
    assert await events.quiet(about(item.id), 1.5) == []
    queue = await catalog.stub.ListContributions(catalog_pb2.ListContributionsRequest())
    (entry,) = queue.contributions
    assert not entry.item.pending and [i.id for i in entry.pending_images] == [photo.image.id]

    approved = await catalog.stub.ApproveImage(catalog_pb2.ApproveImageRequest(id=photo.image.id))
    assert not approved.pending
    got = await events.collect(about(item.id), 1)
    assert [(s, e.image_id) for s, e in got] == [(subjects.IMAGE_ADDED, photo.image.id)]
    assert await refs(catalog) == {official.image.id, photo.image.id}


async def test_approving_a_photo_approves_its_pending_item(
    catalog: Catalog, events: EventReader
) -> None:
    item = await contribute(catalog, "New figure")
    first = await catalog.image(item.id, image_bytes(1), pending=True)
    second = await catalog.image(item.id, image_bytes(2), pending=True)
    await catalog.stub.ApproveImage(catalog_pb2.ApproveImageRequest(id=first.image.id))
    got = await events.collect(about(item.id), 2)
    assert [s for s, _ in got] == [subjects.ITEM_UPSERTED, subjects.IMAGE_ADDED]
    assert await listed(catalog) == ["New figure"]
    queue = await catalog.stub.ListContributions(catalog_pb2.ListContributionsRequest())
    (entry,) = queue.contributions
    assert [i.id for i in entry.pending_images] == [second.image.id]


async def test_rejecting_deletes_and_unknown_ids_are_not_found(catalog: Catalog) -> None:
    item = await contribute(catalog, "Spam")
    photo = await catalog.image(item.id, image_bytes(3), pending=True)
    await catalog.stub.DeleteItem(catalog_pb2.DeleteItemRequest(id=item.id))
    queue = await catalog.stub.ListContributions(catalog_pb2.ListContributionsRequest())
    assert queue.total == 0
    for call, request in [
        (catalog.stub.ApproveItem, catalog_pb2.ApproveItemRequest(id=item.id)),
        (catalog.stub.ApproveImage, catalog_pb2.ApproveImageRequest(id=photo.image.id)),
    ]:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await call(request)
        assert refused.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await catalog.stub.ListContributions(catalog_pb2.ListContributionsRequest(page_size=-1))
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_the_queue_is_oldest_first_and_bounded(catalog: Catalog) -> None:
    names = [f"Contribution {n}" for n in range(5)]
    for name in names:
        await contribute(catalog, name)
    queue = await catalog.stub.ListContributions(catalog_pb2.ListContributionsRequest(page_size=3))
    assert queue.total == 5
    assert [c.item.name for c in queue.contributions] == names[:3]
