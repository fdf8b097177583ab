"""The copy report through the real catalog: copies added as other items (one by one or
by bulk import) are hashed just after they are stored and paired with their original,
with the view that matched and both hashes; a copy turned by an odd angle, which no hash
view matches, is paired by the pixel check; an image's hash leaves with it; images
without a current hash are found and hashed by the periodic scan; a distance the report
cannot honour is refused."""

import asyncio
import io

import grpc
import psycopg
import pytest
import skimage.data
from PIL import Image

from photosearch.catalog.v1 import catalog_pb2
from tests.support.catalog import make_settings, start_catalog
from tests.support.copies import turned_and_zoomed


def encoded(image: Image.Image, quality: int = 90) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return out.getvalue()


ORIGINAL = Image.fromarray(skimage.data.coffee())
MIRRORED = ORIGINAL.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
OTHER = Image.fromarray(skimage.data.rocket())


async def find(stub, **kwargs) -> catalog_pb2.FindCopiesResponse:
    return await stub.FindCopies(catalog_pb2.FindCopiesRequest(**kwargs))


async def hashed(stub, images: int, **kwargs) -> catalog_pb2.FindCopiesResponse:
    """The report once `images` are hashed (the hasher works just after each add)."""
    for _ in range(400):
        report = await find(stub, **kwargs)
        if report.images == images and report.unhashed == 0:
            return report
        await asyncio.sleep(0.05)
    raise AssertionError(f"{images} images not hashed: {report}")


async def test_a_copy_under_another_item_is_paired_with_its_original(catalog) -> None:
    first, second, third = (
        await catalog.item("Mug"),
        await catalog.item("Cup"),
        await catalog.item("Rocket"),
    )
    original = await catalog.image(first.id, encoded(ORIGINAL))
    again = await catalog.image(first.id, encoded(ORIGINAL, quality=40))  # one item: no pair
    copy = await catalog.image(second.id, encoded(MIRRORED, quality=30))
    await catalog.image(third.id, encoded(OTHER))
    report = await hashed(catalog.stub, 4)
    assert report.max_distance == 31
    # The copy matches both photos of the first item, and nothing else matches.
    pairs = {frozenset((p.image_id_a, p.image_id_b)): p for p in report.pairs}
    assert set(pairs) == {
        frozenset((original.image.id, copy.image.id)),
        frozenset((again.image.id, copy.image.id)),
    }
    for pair in report.pairs:
        assert {pair.item_id_a, pair.item_id_b} == {first.id, second.id}
        assert pair.view == "mirrored" and pair.distance <= 31 and pair.found_by == "hash"
        assert len(pair.hash_a) == len(pair.hash_b) == 64 and pair.quality_a >= 50
    assert [p.distance for p in report.pairs] == sorted(p.distance for p in report.pairs)
    assert len((await find(catalog.stub, limit=1)).pairs) == 1
    # Deleting the copy takes its hash along.
    await catalog.stub.DeleteImage(catalog_pb2.DeleteImageRequest(id=copy.image.id))
    after = await find(catalog.stub)
    assert (after.images, after.pairs) == (3, [])


async def test_bulk_imported_copies_are_hashed_too(catalog) -> None:
    async def records():
        for key, image in (("a", ORIGINAL), ("b", ORIGINAL.rotate(90, expand=True))):
            yield catalog_pb2.ImportRecord(
                import_key=key,
                item=catalog_pb2.Item(name=f"Item {key}"),
                images=[catalog_pb2.ImportImage(data=encoded(image), filename=f"{key}.jpg")],
            )

    summary = await catalog.stub.ImportItems(records())
    assert summary.images_added == 2
    report = await hashed(catalog.stub, 2)
    assert [p.view for p in report.pairs] in (["turned 90"], ["turned 270"])


async def test_a_copy_no_hash_view_matches_is_found_by_its_pixels(catalog) -> None:
    first, second, third = (
        await catalog.item("Mug"),
        await catalog.item("Mug, scanned"),
        await catalog.item("Rocket"),
    )
    original = await catalog.image(first.id, encoded(ORIGINAL))
    copy = await catalog.image(second.id, encoded(turned_and_zoomed(ORIGINAL, 15), quality=60))
    await catalog.image(third.id, encoded(OTHER))
    report = await hashed(catalog.stub, 3)
    assert report.unchecked == 0
    [pair] = report.pairs
    assert {pair.image_id_a, pair.image_id_b} == {original.image.id, copy.image.id}
    assert (pair.found_by, pair.view) == ("pixels", "aligned by keypoints")
    assert pair.distance > report.max_distance and pair.similarity >= 0.9
    assert len(pair.hash_a) == len(pair.hash_b) == 64


async def test_a_distance_beyond_the_index_is_refused(catalog) -> None:
    for bad in ({"max_distance": 48}, {"max_distance": -1}, {"limit": -1}):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await find(catalog.stub, **bad)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "must" in (caught.value.details() or "")


async def test_images_stored_without_a_hash_are_hashed_by_the_backfill(
    database_url, nats_server
) -> None:
    settings = make_settings(database_url, nats_server.url, copy_hash_recheck_seconds=2.0)
    service, catalog = await start_catalog(settings)
    try:
        one, two = await catalog.item("One"), await catalog.item("Two")
        await catalog.image(one.id, encoded(ORIGINAL))
        await catalog.image(two.id, encoded(ORIGINAL.convert("L").convert("RGB")))
        await hashed(catalog.stub, 2)
        # As if stored before hashing existed (or hashed by an older scheme).
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
            await conn.execute("UPDATE image_copy_hashes SET version = 0")
        assert (await find(catalog.stub)).unhashed == 2
        report = await hashed(catalog.stub, 2)
        assert len(report.pairs) == 1
    finally:
        await service.stop()
