"""Moderation on the running mesh: what a contributor adds is stored but neither listed
nor indexed until an admin approves it; the review queue shows each pending photo with
the catalog items it looks most like, so a copy of an existing item is caught; approving
indexes it exactly once, rejecting deletes it; the admin's catalog view lists and edits."""

import time

import httpx
import pytest

from photosearch_devstack.mesh import Mesh
from tests.support.mesh import eventually, photo
from tests.support.mesh_api import Api, Seed
from tests.support.mesh_state import image_added_events, vectors_per_image
from tests.support.security import new_client

pytestmark = pytest.mark.slow


def contributor(mesh: Mesh) -> httpx.Client:
    headers = {**mesh.contributor_auth, **new_client()}
    return httpx.Client(base_url=mesh.gateway_url, timeout=30, headers=headers)


def contribute(http: httpx.Client, name: str, data: bytes) -> tuple[str, str]:
    item = http.post("/api/v1/items", json={"name": name})
    assert item.status_code == 201 and item.json()["pending"] is True, item.text
    added = http.post(
        f"/api/v1/items/{item.json()['id']}/images",
        files={"photo": ("mine.jpg", data, "image/jpeg")},
    )
    assert added.status_code == 201 and added.json()["image"]["pending"] is True, added.text
    return item.json()["id"], added.json()["image"]["id"]


def queue(api: Api) -> dict:
    reply = api.http.get("/api/v1/admin/review", headers=api.admin)
    assert reply.status_code == 200, reply.text
    body: dict = reply.json()
    return body


def test_contributions_wait_for_review_and_copies_show_their_original(
    mesh: Mesh, api: Api, seed: Seed
) -> None:
    original_item, original_image = seed.items[0]
    with contributor(mesh) as http:
        new_item, new_image = contribute(http, "Contributed figure", photo(960))
        copy_item, copy_image = contribute(http, "Sample 0 again", photo(0))
    # Stored, but not public and not announced.
    public = api.http.get("/api/v1/items", params={"query": "Contributed"}).json()["items"]
    assert public == []
    shown = api.http.get(
        "/api/v1/admin/items", params={"query": "Contributed"}, headers=api.admin
    ).json()["items"]
    assert [(i["id"], i["pending"], i["added_by"]) for i in shown] == [
        (new_item, True, "contributor-token")
    ]
    assert api.http.get(f"/api/v1/items/{new_item}/images").json()["images"] == []
    every = api.http.get(f"/api/v1/admin/items/{new_item}/images", headers=api.admin)
    assert [i["id"] for i in every.json()["images"]] == [new_image]
    time.sleep(2)  # an event would have reached the stream and the embedder by now
    announced = image_added_events(mesh)
    assert new_image not in announced and copy_image not in announced
    assert vectors_per_image(mesh, seed.model_id).get(new_image) is None

    # The queue: both, oldest first; the copy's nearest item is the one it copies.
    body = queue(api)
    entries = {c["item"]["id"]: c for c in body["contributions"]}
    assert body["total"] >= 2 and {new_item, copy_item} <= set(entries)
    (pending_copy,) = entries[copy_item]["pending_images"]
    assert pending_copy["image"]["id"] == copy_image
    assert pending_copy["nearest_unavailable"] is None
    # (Other tests of this mesh may hold copies of the same photo too.)
    nearest = {(n["item"]["id"], n["image_id"]): n["score"] for n in pending_copy["nearest"]}
    assert nearest.get((original_item, original_image), 0) > 0.99, pending_copy["nearest"]

    # Approve one, reject the copy.
    approved = api.http.post(f"/api/v1/admin/review/items/{new_item}/approve", headers=api.admin)
    assert approved.status_code == 200 and approved.json()["pending"] is False
    rejected = api.http.delete(f"/api/v1/admin/items/{copy_item}", headers=api.admin)
    assert rejected.status_code == 204
    eventually(
        lambda: vectors_per_image(mesh, seed.model_id).get(new_image) == 1 or None,
        60,
        "the approved photo indexed",
    )
    assert image_added_events(mesh)[new_image] == 1
    assert api.http.get(f"/api/v1/items/{copy_item}").status_code == 404
    left = {c["item"]["id"] for c in queue(api)["contributions"]}
    assert new_item not in left and copy_item not in left
    public = api.http.get("/api/v1/items", params={"query": "Contributed"}).json()["items"]
    assert [i["id"] for i in public] == [new_item]


def test_the_admin_edits_an_item(mesh: Mesh, api: Api, seed: Seed) -> None:
    item_id = seed.items[1][0]
    url = f"/api/v1/admin/items/{item_id}"
    edited = api.http.patch(url, headers=api.admin, json={"series": "Edited", "year": 1984})
    assert edited.status_code == 200, edited.text
    assert (edited.json()["series"], edited.json()["year"]) == ("Edited", 1984)
    assert api.http.get(f"/api/v1/items/{item_id}").json()["series"] == "Edited"
    empty = api.http.patch(url, headers=api.admin, json={})
    assert empty.status_code == 400
    blank = api.http.patch(url, headers=api.admin, json={"name": " "})
    assert blank.status_code == 400
    with contributor(mesh) as http:
        refused = http.patch(url, json={"series": "Vandal"})
    assert refused.status_code == 403
