"""The whole mesh, started the way `make run` starts it, reports healthy, has something
to find on a first run, and stops without leaving a process behind."""

import json
from pathlib import Path

import grpc
import httpx
import psutil
import pytest

from photosearch.catalog.v1 import catalog_pb2, catalog_pb2_grpc
from photosearch_devstack.__main__ import first_run
from photosearch_devstack.mesh import GRPC_SERVICES, Mesh
from tests.integration.gateway.models import exported_model

pytestmark = pytest.mark.slow
# Under a loaded CI machine, start-up of five processes can take a while.
START_TIMEOUT = 180


@pytest.fixture(scope="module")
def model_env() -> dict[str, str]:
    """The model exported once for all mesh tests (an export per mesh would dominate the run)."""
    files = exported_model()
    return {"EMBED_MODEL": str(files.directory), "GATEWAY_MODEL_DIR": str(files.directory.parent)}


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory, model_env: dict[str, str]):
    started = Mesh(tmp_path_factory.mktemp("mesh") / "data", extra_env=model_env)
    try:
        yield started.start(timeout=START_TIMEOUT)
    finally:
        started.stop()


def test_every_service_reports_serving(mesh: Mesh) -> None:
    for service in GRPC_SERVICES:
        assert mesh.service_status(service) == "SERVING", service
    assert httpx.get(f"{mesh.gateway_url}/healthz").status_code == 200
    ready = httpx.get(f"{mesh.gateway_url}/readyz")
    assert ready.status_code == 200, ready.text
    assert set(ready.json()["services"]) == set(GRPC_SERVICES)


def test_every_service_serves_its_metrics(mesh: Mesh) -> None:
    for service in GRPC_SERVICES:
        reply = httpx.get(mesh.metrics_url(service), timeout=5)
        assert reply.status_code == 200, service
        # Readiness probes are RPCs too: each service has answered some by now.
        assert "grpc_server_handled_total{" in reply.text, service
        assert "photosearch_serving{" in reply.text, service
    assert "gateway_http_requests_total" in httpx.get(mesh.metrics_url("gateway")).text


def test_logs_are_json_lines_with_the_standard_keys(mesh: Mesh) -> None:
    for service in GRPC_SERVICES:
        lines = (mesh.log_dir / f"{service}.log").read_text().splitlines()
        records = [json.loads(line) for line in lines if line.startswith("{")]
        assert records, f"{service} wrote no JSON log line"
        for record in records:
            assert {"service", "level", "event", "request_id"} <= record.keys(), record
            assert record["service"] == service


def running_under(folder: Path) -> list[psutil.Process]:
    """Live processes whose command line names `folder` (Postgres, NATS: their data)."""
    return [
        p
        for p in psutil.process_iter(["cmdline", "status"])
        if p.info["status"] != "zombie" and str(folder) in " ".join(p.info["cmdline"] or [])
    ]


def test_stop_leaves_no_process_behind(tmp_path: Path, model_env: dict[str, str]) -> None:
    mesh = Mesh(tmp_path / "data", extra_env=model_env).start(timeout=START_TIMEOUT)
    pids = [p.pid for p in mesh.processes.values()]
    assert mesh.nats and mesh.nats.process
    pids.append(mesh.nats.process.pid)
    mesh.stop()
    alive = [
        pid for pid in pids if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"
    ]
    assert alive == []
    assert running_under(tmp_path / "data" / "postgres") == []


def test_a_service_that_cannot_start_stops_the_rest(
    tmp_path: Path, model_env: dict[str, str]
) -> None:
    broken = {**model_env, "GATEWAY_HTTP_PORT": "not a port"}
    mesh = Mesh(tmp_path / "data", extra_env=broken)
    with pytest.raises(RuntimeError, match="gateway exited"):
        mesh.start(timeout=START_TIMEOUT)
    assert mesh.processes == {}
    assert running_under(tmp_path / "data") == []  # nor Postgres, nor NATS


def _items_and_photo_search(mesh: Mesh) -> tuple[int, bool]:
    with grpc.insecure_channel(mesh.address("catalog")) as channel:
        stub = catalog_pb2_grpc.CatalogServiceStub(channel)
        items = stub.ListItems(catalog_pb2.ListItemsRequest(page_size=100), timeout=10).items
        settings = stub.GetSettings(catalog_pb2.GetSettingsRequest(), timeout=10)
        return len(items), settings.photo_search_enabled


def test_a_first_run_has_something_to_find_unless_told_not_to(
    mesh: Mesh, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PHOTOSEARCH_DEMO", "0")
    first_run(mesh)
    assert _items_and_photo_search(mesh) == (0, False)

    monkeypatch.delenv("PHOTOSEARCH_DEMO")
    first_run(mesh)
    items, photo_search = _items_and_photo_search(mesh)
    assert items >= 10 and photo_search
    assert f"open {mesh.gateway_url}/" in capsys.readouterr().out

    first_run(mesh)  # no longer an empty stack: nothing more
    assert _items_and_photo_search(mesh) == (items, True)
