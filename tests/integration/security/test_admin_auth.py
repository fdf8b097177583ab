"""Every admin route of the running gateway, enumerated from its live OpenAPI document (a
new route is covered the moment it exists), refuses a missing or wrong token and changes
nothing; every other route that writes is either a contributor's write
(test_write_access.py) or one of the two open POSTs the product has on purpose; the
routes kept out of the document only read."""

import re
from typing import Any

import httpx
import pytest

from photosearch_devstack.mesh import Mesh
from photosearch_gateway.app import create_app
from photosearch_gateway.config import GatewaySettings
from tests.support.mesh_api import Api, Seed
from tests.support.mesh_state import catalog_image_ids
from tests.support.security import new_client

pytestmark = pytest.mark.slow
# Contributors' writes: manual entry, adding a photo to an item.
CONTRIBUTOR_WRITES = {("POST", "/api/v1/items"), ("POST", "/api/v1/items/{item_id}/images")}
# POSTs anyone may make, which store nothing: photo search by fingerprint and the opt-in
# web lookup (behind GATEWAY_USER_TOKEN when set), the page's sign-in.
OPEN_POSTS = {
    ("POST", "/api/v1/search"),
    ("POST", "/api/v1/fallback/web"),
    ("POST", "/api/v1/auth/token"),  # the page's sign-in: redeems a code, stores nothing
}
WRONG_CREDENTIALS = [
    {},
    {"Authorization": "Bearer"},
    {"Authorization": "Bearer wrong-token"},
    {"Authorization": "bearer wrong-token"},
    {"Authorization": "Basic YWRtaW46YWRtaW4="},
    {"Authorization": "Token x"},
]


def operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, methods in schema["paths"].items()
        for method, operation in methods.items()
        if method in {"get", "put", "post", "delete", "patch"}
    ]


def concrete(path: str, seed: Seed) -> str:
    """A real id for every path parameter (so a refusal is not a 404 in disguise)."""
    item_id, image_id = seed.items[-1]
    path = path.replace("{item_id}", item_id).replace("{image_id}", image_id)
    return re.sub(r"\{[^}]+\}", "x", path)


@pytest.fixture(scope="module")
def schema(api: Api) -> dict[str, Any]:
    reply = api.http.get("/openapi.json")
    assert reply.status_code == 200
    document: dict[str, Any] = reply.json()
    return document


def admin_operations(schema: dict[str, Any]) -> list[tuple[str, str]]:
    found = [
        (method, path)
        for method, path, operation in operations(schema)
        if path.startswith("/api/v1/admin") or {"AdminToken": []} in operation.get("security", [])
    ]
    for method, path, operation in operations(schema):
        if path.startswith("/api/v1/admin"):  # documented as needing the admin token
            assert operation.get("security") == [{"AdminToken": []}], (method, path)
    return found


def test_every_admin_route_refuses_a_missing_or_wrong_token(
    mesh: Mesh, api: Api, seed: Seed, schema: dict[str, Any]
) -> None:
    admin = admin_operations(schema)
    assert len(admin) >= 9
    token = mesh.secrets["admin_token"]
    credentials = [
        *WRONG_CREDENTIALS,
        {"Authorization": f"Bearer {token}x"},
        {"Authorization": f"Bearer {token[:-1]}"},
        {"Authorization": token},
        {"X-Admin-Token": token},
        {"Cookie": f"token={token}"},
    ]
    images_before = catalog_image_ids(mesh)
    settings_before = api.http.get("/api/v1/admin/settings", headers=api.admin).json()
    bodies = {"PUT": {"photo_search_enabled": False, "clear_vision_api_key": True}}
    with httpx.Client(base_url=mesh.gateway_url, timeout=30) as http:
        for method, path in admin:
            for headers in credentials:
                reply = http.request(
                    method,
                    concrete(path, seed),
                    headers={**headers, **new_client()},
                    json=bodies.get(method, {}),
                )
                assert reply.status_code == 401, (method, path, headers, reply.text)
                assert reply.headers["www-authenticate"] == "Bearer"
                assert reply.json()["error"]["code"] == "unauthenticated"
                assert token not in reply.text
    # Nothing was deleted, nothing was switched off.
    assert catalog_image_ids(mesh) == images_before
    assert api.http.get("/api/v1/admin/settings", headers=api.admin).json() == settings_before


def test_the_admin_token_opens_every_admin_route(
    api: Api, seed: Seed, schema: dict[str, Any]
) -> None:
    """The refusals above are about the token: with it, no admin route answers 401."""
    for method, path in admin_operations(schema):
        if method == "DELETE":
            continue  # proven by the catalog and gateway tests; keep the seed intact
        body: dict[str, Any] | None = {} if method in {"POST", "PUT"} else None
        reply = api.http.request(method, concrete(path, seed), headers=api.admin, json=body)
        assert reply.status_code not in (401, 403), (method, path, reply.text)
        assert reply.status_code < 500, (method, path, reply.text)


def test_every_other_write_is_a_contributor_write_or_a_deliberate_open_post(
    schema: dict[str, Any],
) -> None:
    writes = {
        (method, path): operation.get("security")
        for method, path, operation in operations(schema)
        if method != "GET" and not path.startswith("/api/v1/admin")
    }
    assert set(writes) == CONTRIBUTOR_WRITES | OPEN_POSTS
    for route in CONTRIBUTOR_WRITES:
        assert writes[route] == [{"ContributorToken": []}], route


def test_routes_left_out_of_the_document_only_read(tmp_path: Any) -> None:
    app = create_app(GatewaySettings(model_dir=tmp_path))
    documented = set(app.openapi()["paths"])
    hidden = [
        (sorted(getattr(route, "methods", None) or {"GET"}), getattr(route, "path", ""))
        for route in app.routes
        if getattr(route, "path", "") not in documented
    ]
    assert hidden, "the page, its scripts and /metrics are served outside the document"
    for methods, path in hidden:
        assert set(methods) <= {"GET", "HEAD"}, (methods, path)
