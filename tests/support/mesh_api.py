"""The gateway's HTTP API as a client of the mesh sees it, the items a test package
seeds the mesh with, and the checks that every image was indexed exactly once."""

from dataclasses import dataclass
from typing import Any

import httpx

from photosearch_devstack.mesh import Mesh
from tests.support.mesh import eventually
from tests.support.mesh_state import (
    catalog_image_ids,
    image_added_events,
    stored_vector,
    vectors_per_image,
)


@dataclass
class Api:
    """The gateway's HTTP API as a client sees it."""

    mesh: Mesh
    http: httpx.Client

    @classmethod
    def open(cls, mesh: Mesh, timeout: float = 30.0) -> "Api":
        """A client that writes as the dev stack's admin (approved at once, not rate limited)."""
        http = httpx.Client(base_url=mesh.gateway_url, timeout=timeout, headers=mesh.admin_auth)
        return cls(mesh, http)

    @property
    def admin(self) -> dict[str, str]:
        return self.mesh.admin_auth

    def settings(self, **changes: Any) -> dict[str, Any]:
        reply = self.http.put("/api/v1/admin/settings", headers=self.admin, json=changes)
        assert reply.status_code == 200, reply.text
        body: dict[str, Any] = reply.json()
        return body

    def create_item(self, name: str, **fields: Any) -> str:
        reply = self.http.post("/api/v1/items", json={"name": name, **fields})
        assert reply.status_code == 201, reply.text
        return str(reply.json()["id"])

    def add_photo(self, item_id: str, data: bytes, filename: str = "photo.jpg") -> httpx.Response:
        files = {"photo": (filename, data, "image/jpeg")}
        return self.http.post(f"/api/v1/items/{item_id}/images", files=files)

    def add_item_with_photo(self, name: str, data: bytes) -> tuple[str, str]:
        item_id = self.create_item(name)
        reply = self.add_photo(item_id, data)
        assert reply.status_code == 201, reply.text
        return item_id, str(reply.json()["image"]["id"])

    def index(self) -> dict[str, Any]:
        reply = self.http.get("/api/v1/admin/index", headers=self.admin)
        assert reply.status_code == 200, reply.text
        body: dict[str, Any] = reply.json()
        return body

    def wait_embedded(self, count: int, timeout: float = 120.0) -> dict[str, Any]:
        def done() -> dict[str, Any] | None:
            status = self.index()
            settled = status["embedded"] >= count and status["pending"] == 0
            return status if settled else None

        return eventually(done, timeout, f"{count} images embedded")

    def search(self, model_id: str, vector: list[float], **extra: Any) -> httpx.Response:
        body = {"model_id": model_id, "vector": vector, **extra}
        return self.http.post("/api/v1/search", json=body)

    def close(self) -> None:
        self.http.close()


@dataclass(frozen=True)
class Seed:
    """The items a test package seeds its mesh with, and the model that indexed them."""

    model_id: str
    items: list[tuple[str, str]]  # (item id, image id)


def settle(api: Api, timeout: float = 120.0) -> dict[str, Any]:
    """Wait until every catalog image has a vector and nothing is pending or failed."""

    def done() -> dict[str, Any] | None:
        status = api.index()
        ok = (
            status["embedded"] == status["catalog_images"]
            and status["pending"] == 0
            and status["failed"] == 0
        )
        return status if ok else None

    return eventually(done, timeout, "every catalog image embedded")


def assert_one_vector_per_image(api: Api, model_id: str) -> None:
    """Every catalog image has exactly one vector, no vector lacks its image, and
    searching with an image's own vector ranks its item first."""
    mesh = api.mesh
    images = catalog_image_ids(mesh)
    vectors = vectors_per_image(mesh, model_id)
    assert set(vectors) == images, images ^ set(vectors)
    assert set(vectors.values()) == {1}, {k: v for k, v in vectors.items() if v != 1}
    added = image_added_events(mesh)
    assert {image_id: added[image_id] for image_id in images} == dict.fromkeys(images, 1)


def assert_found_by_its_own_vector(api: Api, model_id: str, item_id: str, image_id: str) -> None:
    reply = api.search(model_id, stored_vector(api.mesh, model_id, image_id), k=3)
    assert reply.status_code == 200, reply.text
    best = reply.json()["candidates"][0]
    assert (best["item"]["id"], best["image_id"]) == (item_id, image_id)
