"""Items, images and thumbnails."""

import httpx
import pytest

from tests.unit.gateway.fakes import World

PNG = b"\x89PNG\r\n\x1a\n" + b"pixels" * 10


@pytest.fixture(autouse=True)
def signed_in(client: httpx.AsyncClient, contributor: dict[str, str]) -> None:
    """Writes need a contributor (tests/unit/gateway/test_write_access.py)."""
    client.headers.update(contributor)


async def test_create_get_and_list_items(client: httpx.AsyncClient, world: World) -> None:
    created = await client.post(
        "/api/v1/items",
        json={
            "name": "  Red car ",
            "series": "Cars",
            "year": 1999,
            "tags": ["toy"],
            "external_refs": [{"system": "shop", "ref": "A1"}],
        },
    )
    assert created.status_code == 201, created.text
    item = created.json()
    assert item["name"] == "Red car" and item["year"] == 1999 and item["tags"] == ["toy"]
    got = await client.get(f"/api/v1/items/{item['id']}")
    assert got.status_code == 200 and got.json()["external_refs"][0]["ref"] == "A1"
    page = (await client.get("/api/v1/items", params={"query": "red"})).json()
    assert [i["name"] for i in page["items"]] == ["Red car"]
    assert page["next_page_token"] is None


async def test_item_errors(client: httpx.AsyncClient, world: World) -> None:
    missing = await client.get("/api/v1/items/nope")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    assert (await client.post("/api/v1/items", json={"name": ""})).status_code == 400
    assert (await client.post("/api/v1/items", json={"name": "x", "bogus": 1})).status_code == 400
    assert (await client.post("/api/v1/items", json={"name": "x", "year": -5})).status_code == 400
    await client.post("/api/v1/items", json={"name": "Twice"})
    again = await client.post("/api/v1/items", json={"name": "Twice"})
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_exists"
    bad_id = await client.get("/api/v1/items/..%2F..%2Fetc")
    assert bad_id.status_code in (400, 404)
    assert (await client.get("/api/v1/items", params={"page_size": 0})).status_code == 400


async def test_add_a_photo_to_an_item(client: httpx.AsyncClient, world: World) -> None:
    item = world.add_item("Boat")
    url = f"/api/v1/items/{item.id}/images"
    added = await client.post(url, files={"photo": ("boat.png", PNG, "image/png")})
    assert added.status_code == 201, added.text
    image = added.json()["image"]
    assert added.json()["created"] is True and image["item_id"] == item.id
    same = await client.post(url, files={"photo": ("boat.png", PNG, "image/png")})
    assert same.status_code == 200 and same.json()["created"] is False
    listed = (await client.get(url)).json()["images"]
    assert [i["id"] for i in listed] == [image["id"]]
    assert listed[0]["thumbnail_url"] == f"/api/v1/images/{image['id']}/thumbnail?size=256"


async def test_bad_photos_are_refused(client: httpx.AsyncClient, world: World) -> None:
    item = world.add_item("Boat")
    url = f"/api/v1/items/{item.id}/images"
    empty = await client.post(url, files={"photo": ("e.png", b"", "image/png")})
    assert empty.status_code == 400 and "empty" in empty.json()["error"]["message"]
    html = await client.post(url, files={"photo": ("x.png", b"<html>", "image/png")})
    assert html.status_code == 400 and "not a supported image" in html.json()["error"]["message"]
    nofile = await client.post(url, data={"photo": "text"})
    assert nofile.status_code == 400
    missing = await client.post(
        "/api/v1/items/nope/images", files={"photo": ("b.png", PNG, "image/png")}
    )
    assert missing.status_code == 404


async def test_oversized_uploads_are_refused_early(client: httpx.AsyncClient, world: World) -> None:
    item = world.add_item("Boat")
    big = PNG + b"0" * (26 * 1024 * 1024)
    reply = await client.post(
        f"/api/v1/items/{item.id}/images", files={"photo": ("b.png", big, "image/png")}
    )
    assert reply.status_code == 413
    assert "AddImage" not in world.calls


async def test_thumbnails_are_cacheable(client: httpx.AsyncClient, world: World) -> None:
    item = world.add_item("Boat")
    image_id = world.add_image(item.id, PNG)
    url = f"/api/v1/images/{image_id}/thumbnail"
    thumb = await client.get(url, params={"size": 128})
    assert thumb.status_code == 200 and thumb.content.startswith(b"thumb:128:")
    assert thumb.headers["content-type"] == "image/jpeg"
    assert "immutable" in thumb.headers["cache-control"]
    calls = len(world.calls)
    again = await client.get(
        url, params={"size": 128}, headers={"If-None-Match": thumb.headers["etag"]}
    )
    assert again.status_code == 304 and len(world.calls) == calls
    assert (await client.get(url, params={"size": 77})).status_code == 400
    original = await client.get(f"/api/v1/images/{image_id}")
    assert original.content == PNG and original.headers["content-type"] == "image/png"
    assert (await client.get("/api/v1/images/nope/thumbnail")).status_code == 404
