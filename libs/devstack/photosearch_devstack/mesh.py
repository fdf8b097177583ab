"""Start and stop the whole mesh on one machine: embedded Postgres and NATS,
the four gRPC services and the gateway, each a real process."""

import base64
import ctypes
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

from photosearch_devstack.nats_server import NatsServer
from photosearch_devstack.ports import free_port
from photosearch_devstack.postgres import EmbeddedPostgres

GRPC_SERVICES = ["catalog", "search", "embedder", "fallback"]
MODULES = {
    "catalog": "photosearch_catalog",
    "search": "photosearch_search",
    "embedder": "photosearch_embedder",
    "fallback": "photosearch_fallback",
    "gateway": "photosearch_gateway",
}
DEFAULT_PORTS = {
    "gateway": 8080,
    "catalog": 50051,
    "search": 50052,
    "embedder": 50053,
    "fallback": 50054,
    "postgres": 55432,
    "nats": 54222,
}
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Runs in the child before exec: a SIGKILLed supervisor leaves no orphan."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _dev_secrets(path: Path) -> dict[str, str]:
    """Secrets for local runs, made once and kept beside the data."""
    if path.exists():
        data: dict[str, str] = json.loads(path.read_text())
        return data
    secrets = {
        "admin_token": base64.urlsafe_b64encode(os.urandom(18)).decode(),
        "settings_key": base64.urlsafe_b64encode(os.urandom(32)).decode(),
    }
    path.write_text(json.dumps(secrets))
    path.chmod(0o600)
    return secrets


@dataclass
class Mesh:
    data_dir: Path
    ports: dict[str, int] = field(default_factory=dict)
    extra_env: dict[str, str] = field(default_factory=dict)
    services: list[str] = field(default_factory=lambda: [*GRPC_SERVICES, "gateway"])
    postgres: EmbeddedPostgres | None = None
    nats: NatsServer | None = None
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.data_dir = self.data_dir.resolve()
        self.ports = {name: self.ports.get(name) or free_port() for name in DEFAULT_PORTS}
        # Each gRPC service serves Prometheus /metrics on a port of its own.
        self.metrics_ports = {name: free_port() for name in GRPC_SERVICES}
        self.log_dir = self.data_dir / "logs"
        self.secrets: dict[str, str] = {}

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['gateway']}"

    def address(self, service: str) -> str:
        return f"127.0.0.1:{self.ports[service]}"

    def metrics_url(self, service: str) -> str:
        if service == "gateway":
            return f"{self.gateway_url}/metrics"
        return f"http://127.0.0.1:{self.metrics_ports[service]}/metrics"

    def start_infrastructure(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(exist_ok=True)
        self.secrets = _dev_secrets(self.data_dir / "dev-secrets.json")
        self.postgres = EmbeddedPostgres(self.data_dir / "postgres", port=self.ports["postgres"])
        self.postgres.start()
        for database in ("catalog", "search"):
            self.postgres.create_database(database)
        self.nats = NatsServer(
            self.data_dir / "nats", port=self.ports["nats"], log_file=self.log_dir / "nats.log"
        )
        self.nats.start()

    def env_for(self, service: str) -> dict[str, str]:
        assert self.postgres and self.nats
        models = str(self.data_dir / "models")
        common = {"LOG_FORMAT": "json"}
        per_service = {
            "catalog": {
                "GRPC_PORT": str(self.ports["catalog"]),
                "DATABASE_URL": self.postgres.url("catalog"),
                "NATS_URL": self.nats.url,
                "SETTINGS_KEY": self.secrets["settings_key"],
            },
            "search": {
                "GRPC_PORT": str(self.ports["search"]),
                "DATABASE_URL": self.postgres.url("search"),
                "NATS_URL": self.nats.url,
                "CATALOG_ADDR": self.address("catalog"),
            },
            "embedder": {
                "GRPC_PORT": str(self.ports["embedder"]),
                "NATS_URL": self.nats.url,
                "CATALOG_ADDR": self.address("catalog"),
                "MODEL_CACHE_DIR": models,
            },
            "fallback": {
                "GRPC_PORT": str(self.ports["fallback"]),
                "CATALOG_ADDR": self.address("catalog"),
            },
            "gateway": {
                "HTTP_PORT": str(self.ports["gateway"]),
                "CATALOG_ADDR": self.address("catalog"),
                "SEARCH_ADDR": self.address("search"),
                "EMBEDDER_ADDR": self.address("embedder"),
                "FALLBACK_ADDR": self.address("fallback"),
                "ADMIN_TOKEN": self.secrets["admin_token"],
                "MODEL_DIR": models,
            },
        }[service]
        if service in self.metrics_ports:
            per_service["METRICS_PORT"] = str(self.metrics_ports[service])
        prefix = "EMBED_" if service == "embedder" else f"{service.upper()}_"
        env = {**os.environ, **{prefix + k: v for k, v in {**common, **per_service}.items()}}
        env.update(self.extra_env)
        return env

    def start_service(self, service: str) -> subprocess.Popen[bytes]:
        log = open(self.log_dir / f"{service}.log", "ab")
        process = subprocess.Popen(
            [sys.executable, "-m", MODULES[service]],
            env=self.env_for(service),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        log.close()
        self.processes[service] = process
        return process

    def start(self, timeout: float = 60.0) -> "Mesh":
        self.start_infrastructure()
        for service in self.services:
            self.start_service(service)
        self.wait_until_serving(timeout)
        return self

    def service_status(self, service: str) -> str:
        """SERVING / NOT_SERVING / an error code name, or the gateway's /readyz answer."""
        if service == "gateway":
            try:
                reply = httpx.get(f"{self.gateway_url}/healthz", timeout=1.0)
                return "SERVING" if reply.status_code == 200 else f"HTTP {reply.status_code}"
            except httpx.HTTPError as exc:
                return type(exc).__name__
        with grpc.insecure_channel(self.address(service)) as channel:
            try:
                reply = health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(), timeout=1.0
                )
                return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))
            except grpc.RpcError as exc:
                return str(exc.code().name)  # type: ignore[attr-defined]

    def wait_until_serving(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        pending = list(self.services)
        while pending:
            for service in list(pending):
                process = self.processes[service]
                if process.poll() is not None:
                    raise RuntimeError(
                        f"{service} exited with code {process.returncode}; "
                        f"see {self.log_dir / (service + '.log')}"
                    )
                if self.service_status(service) == "SERVING":
                    pending.remove(service)
            if pending and time.monotonic() > deadline:
                states = {s: self.service_status(s) for s in pending}
                raise TimeoutError(f"not serving after {timeout:.0f} s: {states}")
            if pending:
                time.sleep(0.2)

    def stop_service(self, service: str, timeout: float = 20.0) -> None:
        process = self.processes.pop(service, None)
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def stop(self) -> None:
        """Services first (they drain), then NATS, then Postgres."""
        for service in reversed(list(self.processes)):
            self.stop_service(service)
        if self.nats:
            self.nats.stop()
        if self.postgres:
            self.postgres.stop()

    def __enter__(self) -> "Mesh":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
