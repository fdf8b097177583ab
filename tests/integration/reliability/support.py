"""Shared by the whole-mesh reliability and security tests: the mesh started the way
`make run` starts it (real processes) with the exported test model, an HTTP client for
the gateway's API, distinct photos, and read-only looks into the databases and streams
that let a test count what was stored and what was delivered."""

import asyncio
import io
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import grpc
import httpx
import numpy as np
import psutil
import psycopg
import skimage.data
from grpc_health.v1 import health_pb2, health_pb2_grpc
from PIL import Image

from photosearch.common import subjects
from photosearch.common.model_files import ModelFiles
from photosearch.events.v1 import events_pb2
from photosearch_devstack.mesh import GRPC_SERVICES, Mesh
from tests.integration.gateway.models import exported_model

T = TypeVar("T")
SERVICES = [*GRPC_SERVICES, "gateway"]
_SOURCES = ("chelsea", "astronaut", "coffee", "rocket", "hubble_deep_field", "coins")


def model() -> ModelFiles:
    """The real EfficientNet-Lite0 export the gateway tests use (made once, then cached)."""
    return exported_model()


def mesh_env(files: ModelFiles, **overrides: str) -> dict[str, str]:
    """Environment for every process: the cached export, quick heartbeats, no rate limits
    (tests that measure limits turn them on), debug logs (more lines to check for secrets)."""
    env = {
        "EMBED_MODEL": str(files.directory),
        "EMBED_HEARTBEAT_INTERVAL_SECONDS": "1",
        "EMBED_HEARTBEAT_TTL_SECONDS": "4",
        "SEARCH_WORKERS_POLL_SECONDS": "0.5",
        "GATEWAY_MODEL_DIR": str(files.directory.parent),
        "GATEWAY_SEARCH_RATE_PER_MINUTE": "0",
        "GATEWAY_FALLBACK_RATE_PER_MINUTE": "0",
    }
    env.update(overrides)
    return env


@contextmanager
def running_mesh(data_dir: Path, env: dict[str, str]) -> Iterator[Mesh]:
    mesh = Mesh(data_dir, extra_env=env)
    try:
        mesh.start(timeout=120)
        yield mesh
    finally:
        mesh.stop()


def eventually(check: Callable[[], T | None], timeout: float = 60.0, what: str = "condition") -> T:
    """Retry `check` until it returns a truthy value without an AssertionError."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while True:
        try:
            value = check()
            if value:
                return value
        except AssertionError as exc:
            last = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not met within {timeout:.0f} s ({last})")
        time.sleep(0.2)


def photo(number: int, size: tuple[int, int] = (640, 480)) -> bytes:
    """A distinct JPEG per number, cut from scikit-image's sample photos."""
    source = np.asarray(getattr(skimage.data, _SOURCES[number % len(_SOURCES)])())
    image = Image.fromarray(source).convert("RGB")
    w, h = image.size
    dx, dy = (number * 7) % (w // 4), (number * 11) % (h // 4)
    image = image.crop((dx, dy, dx + w * 3 // 4, dy + h * 3 // 4)).resize(size)
    if number >= len(_SOURCES):  # more than the sources: shift the colours a little
        shift = np.asarray(image, dtype=np.int16) + (number * 37) % 60 - 30
        image = Image.fromarray(np.clip(shift, 0, 255).astype(np.uint8))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=88)
    return out.getvalue()


def service_pids(mesh: Mesh) -> dict[str, int]:
    return {name: process.pid for name, process in mesh.processes.items()}


def rss_bytes(pid: int) -> int:
    """Resident memory of a process and its children (the embedder's export child)."""
    process = psutil.Process(pid)
    return int(process.memory_info().rss + sum(c.memory_info().rss for c in process.children(True)))


def health(mesh: Mesh, service: str) -> str:
    return mesh.service_status(service)


def grpc_health(address: str, credentials: grpc.ChannelCredentials | None = None) -> str:
    channel = (
        grpc.secure_channel(address, credentials) if credentials else grpc.insecure_channel(address)
    )
    with channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=3.0
        )
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))


@dataclass
class Api:
    """The gateway's HTTP API as a client sees it."""

    mesh: Mesh
    http: httpx.Client

    @classmethod
    def open(cls, mesh: Mesh, timeout: float = 30.0) -> "Api":
        return cls(mesh, httpx.Client(base_url=mesh.gateway_url, timeout=timeout))

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.mesh.secrets['admin_token']}"}

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


def database_url(mesh: Mesh, name: str) -> str:
    assert mesh.postgres is not None
    return mesh.postgres.url(name)


def vectors_per_image(mesh: Mesh, model_id: str, variant: str = "global") -> Counter[str]:
    """How many vectors of `model_id` search stores per image (read-only look)."""
    with psycopg.connect(database_url(mesh, "search"), autocommit=True) as conn:
        row = conn.execute("SELECT id FROM models WHERE model_id = %s", (model_id,)).fetchone()
        if row is None:
            return Counter()
        rows = conn.execute(
            f"SELECT image_id, count(*) FROM vectors_{int(row[0])} WHERE variant = %s"
            " GROUP BY image_id",
            (variant,),
        ).fetchall()
    return Counter({str(image_id): int(n) for image_id, n in rows})


def stored_vector(mesh: Mesh, model_id: str, image_id: str) -> list[float]:
    with psycopg.connect(database_url(mesh, "search"), autocommit=True) as conn:
        row = conn.execute("SELECT id FROM models WHERE model_id = %s", (model_id,)).fetchone()
        assert row is not None, model_id
        found = conn.execute(
            f"SELECT embedding::text FROM vectors_{int(row[0])}"
            " WHERE image_id = %s AND variant = 'global'",
            (image_id,),
        ).fetchone()
    assert found is not None, f"no vector for {image_id}"
    return [float(v) for v in str(found[0]).strip("[]").split(",")]


def catalog_image_ids(mesh: Mesh) -> set[str]:
    with psycopg.connect(database_url(mesh, "catalog"), autocommit=True) as conn:
        return {str(r[0]) for r in conn.execute("SELECT id FROM images").fetchall()}


def outbox_size(mesh: Mesh) -> int:
    with psycopg.connect(database_url(mesh, "catalog"), autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM outbox").fetchone()
    return int(row[0]) if row else 0


async def _image_added_events(url: str) -> list[events_pb2.ImageAdded]:
    import nats

    nc = await nats.connect(url, connect_timeout=5)
    try:
        js = nc.jetstream()
        info = await js.stream_info(subjects.CATALOG_STREAM)
        found: list[events_pb2.ImageAdded] = []
        for seq in range(max(info.state.first_seq, 1), info.state.last_seq + 1):
            try:
                raw = await js.get_msg(subjects.CATALOG_STREAM, seq)
            except Exception:  # deleted or expired
                continue
            if raw.subject == subjects.IMAGE_ADDED:
                found.append(events_pb2.ImageAdded.FromString(raw.data or b""))
        return found
    finally:
        await nc.close()


def image_added_events(mesh: Mesh) -> Counter[str]:
    """How many `catalog.image.added` events the CATALOG stream holds per image."""
    assert mesh.nats is not None
    events = asyncio.run(_image_added_events(mesh.nats.url))
    return Counter(e.image_id for e in events)


def log_files(mesh: Mesh) -> list[Path]:
    """Every log the mesh wrote: the services', NATS's and Postgres's."""
    files = sorted(mesh.log_dir.glob("*.log"))
    postgres_log = mesh.data_dir / "postgres" / "server.log"
    if postgres_log.exists():
        files.append(postgres_log)
    return files


def read_log(path: Path) -> str:
    return path.read_text(errors="replace")


def outbox_subjects(mesh: Mesh) -> Counter[str]:
    """Events committed by catalog and not yet acknowledged by JetStream, per subject."""
    with psycopg.connect(database_url(mesh, "catalog"), autocommit=True) as conn:
        rows = conn.execute("SELECT subject, count(*) FROM outbox GROUP BY subject").fetchall()
    return Counter({str(subject): int(n) for subject, n in rows})


def images_without_bytes(mesh: Mesh) -> int:
    with psycopg.connect(database_url(mesh, "catalog"), autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM images i LEFT JOIN image_blobs b ON b.image_id = i.id"
            " WHERE b.image_id IS NULL"
        ).fetchone()
    return int(row[0]) if row else 0


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


def assert_same_processes(mesh: Mesh, before: dict[str, int]) -> None:
    """No service was restarted (or died) since `before` was taken."""
    assert service_pids(mesh) == before
    dead = {name: p.returncode for name, p in mesh.processes.items() if p.poll() is not None}
    assert dead == {}


@contextmanager
def locked(url: str, statement: str) -> Iterator[None]:
    """Hold the lock `statement` takes, in an open transaction, until the block ends."""
    with psycopg.connect(url) as conn:
        conn.execute(statement)  # type: ignore[arg-type]
        try:
            yield
        finally:
            conn.rollback()


def waiting_on_locks(mesh: Mesh, database: str) -> int:
    """Backends of `database` waiting for a lock (requests held by a test's lock)."""
    with psycopg.connect(database_url(mesh, "postgres"), autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'",
            (database,),
        ).fetchone()
    return int(row[0]) if row else 0


def vector_table(mesh: Mesh, model_id: str) -> str:
    with psycopg.connect(database_url(mesh, "search"), autocommit=True) as conn:
        row = conn.execute("SELECT id FROM models WHERE model_id = %s", (model_id,)).fetchone()
    assert row is not None, model_id
    return f"vectors_{int(row[0])}"


async def _embed_queue(url: str, model_id: str) -> tuple[int, int]:
    import nats

    nc = await nats.connect(url, connect_timeout=5)
    try:
        info = await nc.jetstream().consumer_info(
            subjects.EMBED_JOBS_STREAM, subjects.embed_consumer_name(model_id)
        )
        return int(info.num_pending or 0), int(info.num_ack_pending or 0)
    finally:
        await nc.close()


def embed_queue(mesh: Mesh, model_id: str) -> tuple[int, int]:
    """(jobs waiting, jobs handed to a worker and not acknowledged yet)."""
    assert mesh.nats is not None
    return asyncio.run(_embed_queue(mesh.nats.url, model_id))


async def _embed_results(url: str, model_id: str) -> list[events_pb2.EmbedCompleted]:
    import nats

    nc = await nats.connect(url, connect_timeout=5)
    try:
        js = nc.jetstream()
        info = await js.stream_info(subjects.EMBED_RESULTS_STREAM)
        found: list[events_pb2.EmbedCompleted] = []
        for seq in range(max(info.state.first_seq, 1), info.state.last_seq + 1):
            try:
                raw = await js.get_msg(subjects.EMBED_RESULTS_STREAM, seq)
            except Exception:
                continue
            if raw.subject == subjects.EMBED_COMPLETED:
                done = events_pb2.EmbedCompleted.FromString(raw.data or b"")
                if done.model_id == model_id:
                    found.append(done)
        return found
    finally:
        await nc.close()


def embed_results(mesh: Mesh, model_id: str) -> Counter[str]:
    """How many `embed.completed` results the stream holds per image."""
    assert mesh.nats is not None
    return Counter(r.image_id for r in asyncio.run(_embed_results(mesh.nats.url, model_id)))


def restart(mesh: Mesh, service: str) -> None:
    mesh.start_service(service)
    mesh.wait_until_serving(120)


@dataclass(frozen=True)
class Seed:
    """The items a test package seeds its mesh with, and the model that indexed them."""

    model_id: str
    items: list[tuple[str, str]]  # (item id, image id)
