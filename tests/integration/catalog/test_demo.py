"""The demo catalog loads from scikit-image's bundled photos, once."""

import asyncio

from photosearch.catalog.v1 import catalog_pb2
from photosearch_catalog.cli import demo


async def test_demo_catalog_loads_once(catalog) -> None:
    argv = ["--catalog", catalog.service.address, "--quiet", "--if-empty"]
    assert await asyncio.to_thread(demo.main, argv) == 0
    page = await catalog.stub.ListItems(catalog_pb2.ListItemsRequest(page_size=100, tag="demo"))
    names = {item.name: item for item in page.items}
    assert len(names) == len(demo.DEMO_ITEMS)
    assert names["Motorcycle"].image_count == 2
    assert names["Chelsea the Cat"].cover_image_id
    count = (await catalog.stub.CountImages(catalog_pb2.CountImagesRequest())).count
    assert count == len(demo.DEMO_ITEMS) + 1

    # Again, with and without --if-empty: nothing new.
    assert await asyncio.to_thread(demo.main, argv) == 0
    assert await asyncio.to_thread(demo.main, argv[:-1]) == 0
    assert (await catalog.stub.CountImages(catalog_pb2.CountImagesRequest())).count == count
