"""Images through the real gRPC API: add, dedupe, read back, thumbnails, delete,
the rebuild walk, and bad input refused without leaving anything behind."""

import hashlib
import io
import struct
import zlib

import grpc
import pytest
from PIL import Image

from photosearch.catalog.v1 import catalog_pb2
from tests.support.catalog import image_bytes

OFFICIAL = catalog_pb2.IMAGE_ROLE_OFFICIAL
UPLOADED = catalog_pb2.IMAGE_ROLE_UPLOADED


async def test_add_and_get_original_bytes_untouched(catalog) -> None:
    item = await catalog.item()
    data = image_bytes(1, "JPEG", size=(120, 80), quality=70)
    added = await catalog.image(item.id, data, role=OFFICIAL, filename="front.jpg")
    assert added.created
    image = added.image
    assert image.sha256 == hashlib.sha256(data).hexdigest()
    assert (image.width, image.height, image.format) == (120, 80, "JPEG")
    assert image.size_bytes == len(data)
    got = await catalog.stub.GetImage(catalog_pb2.GetImageRequest(id=image.id))
    assert got.data == data
    assert got.content_type == "image/jpeg"
    assert got.image == image


async def test_the_same_bytes_twice_on_one_item_are_one_image(catalog) -> None:
    first, second = await catalog.item("A"), await catalog.item("B")
    data = image_bytes(2)
    one = await catalog.image(first.id, data)
    again = await catalog.image(first.id, data)
    assert not again.created and again.image.id == one.image.id
    other = await catalog.image(second.id, data)  # another item may hold the same photo
    assert other.created and other.image.id != one.image.id
    listed = await catalog.stub.ListImages(catalog_pb2.ListImagesRequest(item_id=first.id))
    assert [i.id for i in listed.images] == [one.image.id]


async def test_cover_is_the_first_official_image_else_the_first(catalog) -> None:
    item = await catalog.item()
    uploaded = await catalog.image(item.id, image_bytes(3), role=UPLOADED)
    fetched = await catalog.stub.GetItem(catalog_pb2.GetItemRequest(id=item.id))
    assert fetched.cover_image_id == uploaded.image.id
    official = await catalog.image(item.id, image_bytes(4), role=OFFICIAL)
    await catalog.image(item.id, image_bytes(5), role=OFFICIAL)
    fetched = await catalog.stub.GetItem(catalog_pb2.GetItemRequest(id=item.id))
    assert fetched.cover_image_id == official.image.id
    assert fetched.image_count == 3


async def test_thumbnails_are_jpegs_that_fit(catalog) -> None:
    item = await catalog.item()
    added = await catalog.image(item.id, image_bytes(6, "PNG", size=(400, 100)))
    for _ in range(2):  # the second comes from the cache, the same bytes
        got = await catalog.stub.GetImage(
            catalog_pb2.GetImageRequest(id=added.image.id, thumbnail_size=64)
        )
        thumb = Image.open(io.BytesIO(got.data))
        assert got.content_type == "image/jpeg" and thumb.format == "JPEG"
        assert thumb.size == (64, 16)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await catalog.stub.GetImage(
            catalog_pb2.GetImageRequest(id=added.image.id, thumbnail_size=100_000)
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "thumbnail_size" in err.value.details()


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "GIF", "HEIF"])
async def test_other_formats_are_accepted(catalog, fmt) -> None:
    item = await catalog.item()
    added = await catalog.image(item.id, image_bytes(7, fmt))
    assert added.image.format == fmt
    got = await catalog.stub.GetImage(
        catalog_pb2.GetImageRequest(id=added.image.id, thumbnail_size=32)
    )
    assert Image.open(io.BytesIO(got.data)).format == "JPEG"


def _noisy_jpeg() -> bytes:
    out = io.BytesIO()
    Image.frombytes("RGB", (200, 200), bytes(range(256)) * 468 + bytes(192)).save(out, "JPEG")
    return out.getvalue()


def _bomb() -> bytes:
    """A valid PNG header claiming 30000x30000 pixels (900 MP) with almost no data."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + body))
        return struct.pack(">I", len(body)) + kind + body + crc

    ihdr = struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 4096))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (_noisy_jpeg()[: len(_noisy_jpeg()) * 2 // 3], "truncated"),
        (_noisy_jpeg()[:300], "damaged"),
        (_bomb(), "MP"),
        (b"%PDF-1.7\n" + bytes(range(256)) * 4, "not a supported image"),
        (b"<svg xmlns='http://www.w3.org/2000/svg' width='10' height='10'/>", "not a supported"),
        (b"<!DOCTYPE html><html><body><img src=x></body></html>", "not a supported image"),
    ],
    ids=["zero-bytes", "truncated", "cut-in-header", "bomb", "pdf", "svg", "html"],
)
async def test_bad_images_are_refused_and_nothing_is_written(catalog, data, message) -> None:
    item = await catalog.item()
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await catalog.image(item.id, data, filename="photo.jpg")
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in err.value.details()
    count = await catalog.stub.CountImages(catalog_pb2.CountImagesRequest())
    assert count.count == 0
    fetched = await catalog.stub.GetItem(catalog_pb2.GetItemRequest(id=item.id))
    assert fetched.image_count == 0


async def test_too_many_bytes_is_refused_with_the_limit(database_url, nats_server) -> None:
    from tests.support.catalog import make_settings, start_catalog

    service, small = await start_catalog(
        make_settings(database_url, nats_server.url, max_image_bytes=2048)
    )
    try:
        item = await small.item()
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await small.image(item.id, image_bytes(9, "PNG", size=(200, 200)) + b"\0" * 4096)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "limit" in err.value.details()
    finally:
        await service.stop()


async def test_images_of_a_missing_item_or_unknown_ids(catalog) -> None:
    item = await catalog.item()
    await catalog.stub.DeleteItem(catalog_pb2.DeleteItemRequest(id=item.id))
    for call in (
        catalog.image(item.id, image_bytes(10)),
        catalog.stub.ListImages(catalog_pb2.ListImagesRequest(item_id=item.id)),
        catalog.stub.GetImage(catalog_pb2.GetImageRequest(id=item.id)),
        catalog.stub.DeleteImage(catalog_pb2.DeleteImageRequest(id=item.id)),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call
        assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_delete_image_and_item_remove_them_and_their_bytes(catalog) -> None:
    item = await catalog.item()
    kept = await catalog.image(item.id, image_bytes(11))
    gone = await catalog.image(item.id, image_bytes(12))
    await catalog.stub.DeleteImage(catalog_pb2.DeleteImageRequest(id=gone.image.id))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await catalog.stub.GetImage(catalog_pb2.GetImageRequest(id=gone.image.id))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert (await catalog.stub.CountImages(catalog_pb2.CountImagesRequest())).count == 1
    await catalog.stub.DeleteItem(catalog_pb2.DeleteItemRequest(id=item.id))
    assert (await catalog.stub.CountImages(catalog_pb2.CountImagesRequest())).count == 0
    with pytest.raises(grpc.aio.AioRpcError):
        await catalog.stub.GetImage(catalog_pb2.GetImageRequest(id=kept.image.id))


async def test_stream_image_refs_walks_every_image_once(catalog) -> None:
    expected = set()
    for n in range(5):
        item = await catalog.item(f"Item {n}")
        for k in range(5):
            added = await catalog.image(item.id, image_bytes(100 + n * 10 + k))
            expected.add((added.image.id, item.id))
    batches = [
        batch
        async for batch in catalog.stub.StreamImageRefs(
            catalog_pb2.StreamImageRefsRequest(batch_size=7)
        )
    ]
    assert [len(b.refs) for b in batches] == [7, 7, 7, 4]
    seen = [(r.image_id, r.item_id) for b in batches for r in b.refs]
    assert len(seen) == len(set(seen)) and set(seen) == expected
    count = await catalog.stub.CountImages(catalog_pb2.CountImagesRequest())
    assert count.count == 25
