"""The whole mesh of real processes for the reliability and security tests, started
the way `make run` starts it, with the exported test model; distinct photos to feed it,
and a look at its processes and logs. Its HTTP API: mesh_api.py; what it stored and
delivered: mesh_state.py."""

import io
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import numpy as np
import skimage.data
from PIL import Image

from photosearch.common.model_files import ModelFiles
from photosearch_devstack.mesh import Mesh
from tests.integration.gateway.models import exported_model

T = TypeVar("T")
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
        # The default runtime choice, timed briefly (once per session: it is cached with
        # the export).
        "EMBED_RUNTIME": "auto",
        "EMBED_RUNTIME_PROBE_SECONDS": "0.3",
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


def restart(mesh: Mesh, service: str) -> None:
    mesh.start_service(service)
    mesh.wait_until_serving(120)


def log_files(mesh: Mesh) -> list[Path]:
    """Every log the mesh wrote: the services', NATS's and Postgres's."""
    files = sorted(mesh.log_dir.glob("*.log"))
    postgres_log = mesh.data_dir / "postgres" / "server.log"
    if postgres_log.exists():
        files.append(postgres_log)
    return files


def assert_same_processes(mesh: Mesh, before: dict[str, int]) -> None:
    """No service was restarted (or died) since `before` was taken."""
    assert service_pids(mesh) == before
    dead = {name: p.returncode for name, p in mesh.processes.items() if p.poll() is not None}
    assert dead == {}
