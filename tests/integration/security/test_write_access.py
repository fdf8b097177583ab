"""Who may write the system of record, on the running mesh: every write route, enumerated
from the live OpenAPI document, refuses callers who may not write (401 or 403 with the
reason) and changes nothing; a contributor named by an OIDC token of the local issuer
adds an item whose photo becomes searchable once approved, and the gateway's log names
them; the admin role opens the admin API, the contributor role does not."""

from typing import Any

import httpx
import pytest

from photosearch_devstack.mesh import Mesh
from tests.support.mesh import eventually, photo
from tests.support.mesh_api import Api, Seed
from tests.support.mesh_state import catalog_image_ids, vectors_per_image
from tests.support.oidc_issuer import LocalIssuer, new_key
from tests.support.security import USER_TOKEN, new_client

pytestmark = pytest.mark.slow
WRITES = {("POST", "/api/v1/items"), ("POST", "/api/v1/items/{item_id}/images")}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def schema(api: Api) -> dict[str, Any]:
    document: dict[str, Any] = api.http.get("/openapi.json").json()
    return document


def contributor_writes(schema: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, methods in schema["paths"].items()
        for method, operation in methods.items()
        if {"ContributorToken": []} in operation.get("security", [])
    }


def write(http: httpx.Client, path: str, seed: Seed, headers: dict[str, str]) -> httpx.Response:
    item_id = seed.items[0][0]
    if path.endswith("/images"):
        files = {"photo": ("p.jpg", photo(900), "image/jpeg")}
        return http.post(path.replace("{item_id}", item_id), files=files, headers=headers)
    return http.post(path, json={"name": "Vandal"}, headers=headers)


def test_every_write_refuses_a_caller_who_may_not_write(
    mesh: Mesh, api: Api, seed: Seed, schema: dict[str, Any], issuer: LocalIssuer
) -> None:
    assert contributor_writes(schema) == WRITES
    refused = [
        ({}, 401, "writing needs the contributor token or a token from"),
        (bearer("wrong-token"), 401, "not accepted"),
        (bearer(USER_TOKEN), 403, "the user token may not write"),
        (bearer(issuer.token("mallory", [])), 403, "mallory may not write"),
        (bearer(issuer.token("mallory", ["contributor"], lifetime=-120)), 401, "expired"),
        (bearer(issuer.token("mallory", ["contributor"], key=new_key())), 401, "not valid"),
    ]
    images = catalog_image_ids(mesh)
    names = {
        i["name"] for i in api.http.get("/api/v1/items", params={"page_size": 200}).json()["items"]
    }
    with httpx.Client(base_url=mesh.gateway_url, timeout=30) as http:
        for method, path in sorted(WRITES):
            for headers, status, reason in refused:
                reply = write(http, path, seed, {**headers, **new_client()})
                assert reply.status_code == status, (method, path, headers, reply.text)
                assert reason in reply.json()["error"]["message"], reply.text
                if status == 401:
                    assert reply.headers["www-authenticate"].startswith("Bearer")
    assert catalog_image_ids(mesh) == images
    after = api.http.get("/api/v1/items", params={"page_size": 200}).json()["items"]
    assert {i["name"] for i in after} == names


def test_an_oidc_contributor_adds_a_photo_searchable_once_approved(
    mesh: Mesh, api: Api, seed: Seed, issuer: LocalIssuer
) -> None:
    token = issuer.token("alice", ["contributor"])
    headers = {**bearer(token), **new_client()}
    with httpx.Client(base_url=mesh.gateway_url, timeout=30, headers=headers) as http:
        item = http.post("/api/v1/items", json={"name": "Alice's find"})
        assert item.status_code == 201, item.text
        added = http.post(
            f"/api/v1/items/{item.json()['id']}/images",
            files={"photo": ("find.jpg", photo(901), "image/jpeg")},
        )
        assert added.status_code == 201, added.text
    assert item.json()["pending"] and added.json()["image"]["pending"]
    image_id = added.json()["image"]["id"]
    approved = api.http.post(
        f"/api/v1/admin/review/items/{item.json()['id']}/approve", headers=api.admin
    )
    assert approved.status_code == 200 and approved.json()["added_by"] == "oidc:alice"
    eventually(
        lambda: vectors_per_image(mesh, seed.model_id).get(image_id) == 1 or None,
        60,
        "the contributor's photo indexed once approved",
    )
    log = (mesh.log_dir / "gateway.log").read_text()
    assert "oidc:alice" in log  # who wrote is on the request's log line
    assert token not in log and token.split(".")[2] not in log


def test_oidc_roles_open_the_admin_api_only_to_admins(mesh: Mesh, issuer: LocalIssuer) -> None:
    with httpx.Client(base_url=mesh.gateway_url, timeout=30, headers=new_client()) as http:
        admin = http.get("/api/v1/admin/index", headers=bearer(issuer.token("carol", ["admin"])))
        assert admin.status_code == 200, admin.text
        contributor = bearer(issuer.token("alice", ["contributor"]))
        refused = http.get("/api/v1/admin/index", headers=contributor)
        assert refused.status_code == 403, refused.text
        assert "alice may not use the admin API" in refused.json()["error"]["message"]
