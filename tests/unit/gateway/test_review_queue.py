"""The review queue against fake services: each pending photo with its nearest items,
embedded once and then remembered; a failing embedder leaves the queue readable and says
why."""

import grpc
import httpx

from tests.unit.gateway.fakes import World

PNG = b"\x89PNG\r\n\x1a\n" + b"pixels" * 10


def seed(world: World) -> tuple[str, str]:
    """An item in the catalog (indexed) and a contributor's new item with a pending photo."""
    known = world.add_item("Boba Fett")
    world.add_image(known.id, PNG + b"a", vector=[1.0, 0.0, 0.0, 0.0])
    new = world.add_item("Boba Fett again")
    pending = world.add_image(new.id, PNG + b"b")
    world.pending.append(pending)
    return known.id, pending


async def test_pending_photos_come_with_their_nearest_items_embedded_once(
    client: httpx.AsyncClient, world: World, admin: dict[str, str]
) -> None:
    known, pending = seed(world)
    first = await client.get("/api/v1/admin/review", headers=admin)
    assert first.status_code == 200, first.text
    (entry,) = first.json()["contributions"]
    (photo,) = entry["pending_images"]
    assert photo["image"]["id"] == pending and photo["nearest_unavailable"] is None
    assert photo["nearest"][0]["item"]["id"] == known
    assert photo["nearest"][0]["thumbnail_url"].startswith("/api/v1/images/")
    again = await client.get("/api/v1/admin/review", headers=admin)
    assert again.json() == first.json()
    assert world.calls.count("Embed") == 1  # remembered, not embedded at every reload


async def test_without_an_embedder_the_queue_says_why(
    client: httpx.AsyncClient, world: World, admin: dict[str, str]
) -> None:
    seed(world)
    world.fail["Embed"] = grpc.StatusCode.UNAVAILABLE
    reply = await client.get("/api/v1/admin/review", headers=admin)
    assert reply.status_code == 200
    (photo,) = reply.json()["contributions"][0]["pending_images"]
    assert photo["nearest"] == [] and "embedder" in photo["nearest_unavailable"]
    # Not remembered: it is asked again once the embedder is back.
    del world.fail["Embed"]
    reply = await client.get("/api/v1/admin/review", headers=admin)
    (photo,) = reply.json()["contributions"][0]["pending_images"]
    assert photo["nearest"] and photo["nearest_unavailable"] is None
    assert world.calls.count("Embed") == 2


async def test_the_queue_needs_the_admin(
    client: httpx.AsyncClient, world: World, contributor: dict[str, str]
) -> None:
    assert (await client.get("/api/v1/admin/review")).status_code == 401
    assert (await client.get("/api/v1/admin/review", headers=contributor)).status_code == 403
