"""Items through the real gRPC API: create, read, update, delete, list."""

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask

from photosearch.catalog.v1 import catalog_pb2


async def test_create_get_update_delete(catalog) -> None:
    created = await catalog.item(
        "  Dark   Magician ",
        series="Yu-Gi-Oh!",
        maker="Konami",
        year=1999,
        variant="UR",
        tags=["spellcaster", "dark", "spellcaster"],
        attributes={"set_code": "LOB-005"},
        external_refs=[catalog_pb2.ExternalRef(system="ygoprodeck", ref="46986414")],
    )
    assert created.id and created.name == "Dark Magician"
    assert list(created.tags) == ["spellcaster", "dark"]
    assert created.image_count == 0 and created.cover_image_id == ""
    fetched = await catalog.stub.GetItem(catalog_pb2.GetItemRequest(id=created.id))
    assert fetched == created

    updated = await catalog.stub.UpdateItem(
        catalog_pb2.UpdateItemRequest(
            item=catalog_pb2.Item(id=created.id, name="Dark Magician Girl", maker="ignored"),
            update_mask=FieldMask(paths=["name"]),
        )
    )
    assert updated.name == "Dark Magician Girl"
    assert updated.maker == "Konami"  # not in the mask
    assert updated.updated_at.ToDatetime() >= created.updated_at.ToDatetime()

    await catalog.stub.DeleteItem(catalog_pb2.DeleteItemRequest(id=created.id))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await catalog.stub.GetItem(catalog_pb2.GetItemRequest(id=created.id))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await catalog.stub.DeleteItem(catalog_pb2.DeleteItemRequest(id=created.id))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize(
    ("item", "message"),
    [
        (catalog_pb2.Item(name="   "), "needs a name"),
        (catalog_pb2.Item(name="x", year=20000), "year"),
        (catalog_pb2.Item(name="x" * 501), "limit is 500"),
        (
            catalog_pb2.Item(name="x", external_refs=[catalog_pb2.ExternalRef(system="s")]),
            "needs a ref or a url",
        ),
    ],
)
async def test_invalid_items_are_refused_with_the_reason(catalog, item, message) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await catalog.stub.CreateItem(catalog_pb2.CreateItemRequest(item=item))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in err.value.details()


async def test_bad_ids_and_masks_say_what_is_wrong(catalog) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await catalog.stub.GetItem(catalog_pb2.GetItemRequest(id="not-a-uuid"))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "not-a-uuid" in err.value.details()
    item = await catalog.item()
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await catalog.stub.UpdateItem(
            catalog_pb2.UpdateItemRequest(
                item=catalog_pb2.Item(id=item.id, name="x"), update_mask=FieldMask(paths=["colour"])
            )
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "colour" in err.value.details()


async def test_pagination_visits_every_item_once_in_name_order(catalog) -> None:
    names = [f"Figure {n:03d}" for n in range(23)] + ["figure 000"]  # a case-insensitive tie
    for name in reversed(names):
        await catalog.item(name)
    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        page = await catalog.stub.ListItems(
            catalog_pb2.ListItemsRequest(page_size=5, page_token=token)
        )
        seen.extend(item.name for item in page.items)
        pages += 1
        token = page.next_page_token
        if not token:
            break
    assert pages == 5
    assert sorted(seen, key=str.lower) == seen
    assert sorted(seen) == sorted(names)


async def test_name_search_is_case_insensitive_and_filters_combine(catalog) -> None:
    await catalog.item("Dark Magician", series="Yu-Gi-Oh!", maker="Konami", tags=["spell"])
    await catalog.item("Dark Magician Girl", series="Yu-Gi-Oh!", maker="Konami", tags=["girl"])
    await catalog.item("Blue-Eyes White Dragon", series="Yu-Gi-Oh!", maker="Konami")
    await catalog.item("Darkwing Duck", series="Disney", maker="Hasbro")
    await catalog.item("100% Pure_Dark", series="Other")

    async def names(**request) -> list[str]:
        page = await catalog.stub.ListItems(catalog_pb2.ListItemsRequest(**request))
        return [item.name for item in page.items]

    assert await names(query="DARK m") == ["Dark Magician", "Dark Magician Girl"]
    assert await names(query="dark", series="yu-gi-oh!") == ["Dark Magician", "Dark Magician Girl"]
    assert await names(query="dark", maker="Hasbro") == ["Darkwing Duck"]
    assert await names(tag="girl") == ["Dark Magician Girl"]
    assert await names(query="100%") == ["100% Pure_Dark"]  # LIKE wildcards are literal
    assert await names(query="k_m") == []  # would match "Dark Magician" as a wildcard


async def test_a_page_token_only_works_with_its_own_filters(catalog) -> None:
    for n in range(3):
        await catalog.item(f"Item {n}", series="A")
    page = await catalog.stub.ListItems(catalog_pb2.ListItemsRequest(page_size=1, series="A"))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await catalog.stub.ListItems(
            catalog_pb2.ListItemsRequest(page_size=1, series="B", page_token=page.next_page_token)
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await catalog.stub.ListItems(catalog_pb2.ListItemsRequest(page_token="garbage!"))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_batch_get_keeps_the_requested_order_and_skips_missing(catalog) -> None:
    a, b, c = [await catalog.item(name) for name in ("A", "B", "C")]
    await catalog.stub.DeleteItem(catalog_pb2.DeleteItemRequest(id=b.id))
    reply = await catalog.stub.BatchGetItems(
        catalog_pb2.BatchGetItemsRequest(ids=[c.id, b.id, "junk", a.id, c.id])
    )
    assert [item.name for item in reply.items] == ["C", "A", "C"]


async def test_import_key_is_unique_for_manual_creation(catalog) -> None:
    await catalog.item("A", import_key="csv:row-1")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await catalog.item("B", import_key="csv:row-1")
    assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS
