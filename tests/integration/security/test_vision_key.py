"""The Google Vision API key across a whole run of the mesh (real processes, every service
logging at debug level): set through the admin API, replaced, used by the web fallback
against the fake Vision through every kind of failure, including an upstream that
echoes the key back. It is never in an API answer, an error, a metric, a log line of any
process, or any file the mesh wrote (it is encrypted at rest). The web lookup stores
nothing. This module runs last in the package, so its scan covers the whole package run."""

import os
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from photosearch_devstack.mesh import Mesh
from tests.support.fake_vision import RICH_WEB_DETECTION, FakeVision, Reply
from tests.support.mesh import eventually, log_files
from tests.support.mesh_api import Api, Seed
from tests.support.mesh_state import catalog_image_ids
from tests.support.security import VISION_KEY, new_client

pytestmark = pytest.mark.slow
OTHER_KEY = "AIzaSy-security-second-key-Zr81Vb"


def web_lookup(api: Api, photo: bytes) -> httpx.Response:
    files = {"photo": ("photo.jpg", photo, "image/jpeg")}
    return api.http.post("/api/v1/fallback/web", files=files, headers=new_client())


def files_of(folder: Path) -> dict[Path, tuple[int, int]]:
    return {
        path: (path.stat().st_size, path.stat().st_mtime_ns)
        for path in folder.rglob("*")
        if path.is_file()
    }


def secrets_in(data: bytes) -> list[str]:
    return [key for key in (VISION_KEY, OTHER_KEY) if key.encode() in data]


@pytest.fixture(scope="module")
def answers(mesh: Mesh, api: Api, seed: Seed, vision: FakeVision) -> list[httpx.Response]:
    """A run of admin and fallback traffic; every answer kept for inspection."""
    photo = api.http.get(f"/api/v1/images/{seed.items[0][1]}").content
    kept: list[httpx.Response] = []
    watched = mesh.data_dir / "models"  # anything the mesh writes besides its stores and logs
    before = files_of(watched) if watched.exists() else {}
    images_before = catalog_image_ids(mesh)

    def admin(method: str, path: str, **kwargs: Any) -> httpx.Response:
        reply = api.http.request(method, path, headers=api.admin, **kwargs)
        kept.append(reply)
        return reply

    vision.reset()
    vision.set_default(Reply.web_detection(RICH_WEB_DETECTION))
    # A wrong key first (Google rejects it), then the right one.
    admin("PUT", "/api/v1/admin/settings", json={"web_fallback_enabled": True,
                                                 "vision_api_key": OTHER_KEY})  # fmt: skip

    def rejected() -> bool:
        reply = web_lookup(api, photo)
        kept.append(reply)
        return reply.status_code == 401

    eventually(rejected, 30, "the wrong key rejected")
    assert admin("PUT", "/api/v1/admin/settings", json={"vision_api_key": VISION_KEY}).is_success

    def accepted() -> bool:
        reply = web_lookup(api, photo)
        kept.append(reply)
        return reply.status_code == 200

    eventually(accepted, 30, "the right key accepted")
    # Upstream failures of every kind, some of them echoing the key back.
    for reply in (
        Reply.error(400, f"Invalid request for key={VISION_KEY}"),
        Reply.error(500, f"backend error while serving {VISION_KEY}"),
        Reply.error(503, "try later"),
        Reply.error(429, "quota", retry_after=1),
        Reply.image_error(3, f"Bad image data (key {VISION_KEY})"),
        Reply.error(403, f"API {VISION_KEY} has not been used in project 42"),
        Reply.disconnect(),
        Reply.web_detection(RICH_WEB_DETECTION),
    ):
        vision.set_default(reply)
        kept.append(web_lookup(api, photo))
    vision.set_default(Reply.web_detection(RICH_WEB_DETECTION))
    for path in ("/api/v1/admin/settings", "/api/v1/admin/index", "/api/v1/admin/models"):
        admin("GET", path)
    for path in ("/api/v1/config", "/openapi.json", "/metrics", "/readyz", "/", "/admin"):
        kept.append(api.http.get(path))
    # The web lookup stored nothing: no image, no file.
    assert catalog_image_ids(mesh) == images_before
    assert (files_of(watched) if watched.exists() else {}) == before
    return kept


def test_the_key_reached_google_and_was_used(answers: list[httpx.Response], vision: FakeVision):
    used = {request.api_key for request in vision.requests}
    assert used == {OTHER_KEY, VISION_KEY}  # the keys really went through the mesh


def test_no_answer_carries_the_key(answers: list[httpx.Response]) -> None:
    codes = sorted({r.status_code for r in answers if r.request.url.path.endswith("/web")})
    assert {200, 400, 401, 429, 503} <= set(codes), codes  # the failures did happen
    for reply in answers:
        assert secrets_in(reply.content) == [], (reply.request.url, reply.text[:300])
        assert secrets_in(str(reply.headers).encode()) == [], reply.request.url


def test_no_log_line_of_any_process_carries_the_key(
    mesh: Mesh, answers: list[httpx.Response]
) -> None:
    logs = log_files(mesh)
    assert {p.name for p in logs} >= {f"{s}.log" for s in ("catalog", "fallback", "gateway")}
    fallback_log = (mesh.log_dir / "fallback.log").read_text()
    assert '"web_detect"' in fallback_log and '"level": "debug"' in fallback_log
    for path in logs:
        assert secrets_in(path.read_bytes()) == [], path


def test_no_file_the_mesh_wrote_carries_the_key(mesh: Mesh, answers: list[httpx.Response]):
    """Postgres's tables and write-ahead log, NATS's store, logs: the key is only ever
    stored encrypted."""
    scanned = 0
    for root, _, names in os.walk(mesh.data_dir):
        for name in names:
            path = Path(root, name)
            if path.is_symlink() or not path.is_file():
                continue
            assert secrets_in(path.read_bytes()) == [], path
            scanned += 1
    assert scanned > 100


def test_the_fallback_keeps_no_file_open_but_its_log(
    mesh: Mesh, answers: list[httpx.Response]
) -> None:
    process = psutil.Process(mesh.processes["fallback"].pid)
    opened = {Path(f.path) for f in process.open_files()}
    assert opened <= {mesh.log_dir / "fallback.log"}, opened
