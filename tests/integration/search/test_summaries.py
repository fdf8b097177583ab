"""What answers show of each item comes with search's answer: kept from catalog's item
events (a rename shows up), and filled in from catalog for items search knew before."""

import numpy as np

from photosearch.catalog.v1 import catalog_pb2
from photosearch_search.catalog import GrpcCatalog
from photosearch_search.summaries import SummaryBackfill
from tests.support.search import DIM, eventually, unit

VECTOR = unit(np.eye(DIM, dtype=np.float32)[3])


async def _item_with_vector(h, **fields):
    item = await h.catalog_stub.CreateItem(
        catalog_pb2.CreateItemRequest(item=catalog_pb2.Item(**fields))
    )
    await h.completed("img-1", item.id, VECTOR)

    async def found():
        reply = await h.search_items(VECTOR, k=1)
        assert [c.item_id for c in reply.candidates] == [item.id]
        assert reply.candidates[0].HasField("item")
        return reply.candidates[0]

    return item, await eventually(found)


async def test_answers_carry_the_item_as_catalog_last_described_it(start_harness):
    h = await start_harness()
    item, top = await _item_with_vector(
        h, name="Dark Magician", series="Yu-Gi-Oh", maker="Konami", year=1999, variant="1st"
    )
    shown = top.item
    assert (shown.name, shown.series, shown.maker, shown.year, shown.variant) == (
        "Dark Magician",
        "Yu-Gi-Oh",
        "Konami",
        1999,
        "1st",
    )
    reply = await h.search_items(VECTOR, k=1)
    assert [t.stage for t in reply.timings] == ["candidates", "names"]

    await h.catalog_stub.UpdateItem(
        catalog_pb2.UpdateItemRequest(
            item=catalog_pb2.Item(id=item.id, name="Dark Magician Girl"),
            update_mask={"paths": ["name"]},
        )
    )

    async def renamed():
        reply = await h.search_items(VECTOR, k=1)
        assert reply.candidates[0].item.name == "Dark Magician Girl"
        assert reply.candidates[0].item.series == "Yu-Gi-Oh"

    await eventually(renamed)


async def test_items_known_without_a_name_are_filled_in_from_catalog(start_harness):
    h = await start_harness()
    item, _ = await _item_with_vector(h, name="Blue-Eyes", series="Yu-Gi-Oh")
    pool = h.search.lifecycle.infra.require_pool
    async with pool().connection() as conn:  # as a row written before names were kept
        await conn.execute("UPDATE items SET name = NULL WHERE item_id = %s", (item.id,))
        await conn.execute(
            "INSERT INTO items (item_id) VALUES ('deleted-from-catalog') ON CONFLICT DO NOTHING"
        )
    reply = await h.search_items(VECTOR, k=1)
    assert not reply.candidates[0].HasField("item")  # the gateway would ask catalog

    catalog = GrpcCatalog(h.catalog.channel(), timeout=5.0)
    backfill = SummaryBackfill(pool, catalog, batch=1)  # one item per call: the walk pages
    assert await backfill.run_once() == 1
    assert await backfill.run_once() == 0  # nothing left that catalog knows
    reply = await h.search_items(VECTOR, k=1)
    assert reply.candidates[0].item.name == "Blue-Eyes"
    assert reply.candidates[0].item.series == "Yu-Gi-Oh"
