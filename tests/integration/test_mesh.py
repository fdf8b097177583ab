"""The whole mesh, started the way `make run` starts it, reports healthy and
stops without leaving a process behind."""

import json
from pathlib import Path

import httpx
import psutil
import pytest

from photosearch_devstack.mesh import GRPC_SERVICES, Mesh

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory):
    started = Mesh(tmp_path_factory.mktemp("mesh") / "data")
    with started:
        yield started


def test_every_service_reports_serving(mesh: Mesh) -> None:
    for service in GRPC_SERVICES:
        assert mesh.service_status(service) == "SERVING", service
    assert httpx.get(f"{mesh.gateway_url}/healthz").status_code == 200
    ready = httpx.get(f"{mesh.gateway_url}/readyz")
    assert ready.status_code == 200, ready.text
    assert set(ready.json()["services"]) == set(GRPC_SERVICES)


def test_logs_are_json_lines_with_the_standard_keys(mesh: Mesh) -> None:
    for service in GRPC_SERVICES:
        lines = (mesh.log_dir / f"{service}.log").read_text().splitlines()
        records = [json.loads(line) for line in lines if line.startswith("{")]
        assert records, f"{service} wrote no JSON log line"
        for record in records:
            assert {"service", "level", "event", "request_id"} <= record.keys(), record
            assert record["service"] == service


def test_stop_leaves_no_process_behind(tmp_path: Path) -> None:
    mesh = Mesh(tmp_path / "data").start()
    pids = [p.pid for p in mesh.processes.values()]
    assert mesh.nats and mesh.nats.process
    pids.append(mesh.nats.process.pid)
    pg_dir = str(tmp_path / "data" / "postgres")
    mesh.stop()
    alive = [
        pid for pid in pids if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"
    ]
    assert alive == []
    postgres_left = [
        p
        for p in psutil.process_iter(["cmdline", "status"])
        if p.info["status"] != "zombie" and pg_dir in " ".join(p.info["cmdline"] or [])
    ]
    assert postgres_left == []
