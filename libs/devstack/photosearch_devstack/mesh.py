"""Start and stop the whole mesh on one machine: embedded Postgres and NATS,
the four gRPC services and the gateway, each a real process."""

import base64
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
# Services that may run several replicas on one machine (stateless, or coordinated
# through NATS and Postgres); the others, and the gateway's HTTP port, stay single.
SCALABLE = ("embedder", "search")
# Each service runs under this module, which stops it when its supervisor dies.
CHILD_MODULE = "photosearch_devstack.child"


def base(name: str) -> str:
    """The service a process name runs: "search-2" -> "search"."""
    return name.split("-", 1)[0]


def _dev_secrets(path: Path) -> dict[str, str]:
    """Secrets for local runs, made once and kept beside the data."""
    sizes = {"admin_token": 18, "contributor_token": 18, "settings_key": 32}
    secrets: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    missing = {
        name: base64.urlsafe_b64encode(os.urandom(size)).decode()
        for name, size in sizes.items()
        if name not in secrets
    }
    if missing:  # first run, or data from before a secret existed
        secrets.update(missing)
        path.write_text(json.dumps(secrets))
        path.chmod(0o600)
    return secrets


@dataclass
class Mesh:
    data_dir: Path
    ports: dict[str, int] = field(default_factory=dict)
    extra_env: dict[str, str] = field(default_factory=dict)
    services: list[str] = field(default_factory=lambda: [*GRPC_SERVICES, "gateway"])
    # Replicas per service beyond the first ("search": 2 runs search and search-2).
    replicas: dict[str, int] = field(default_factory=dict)
    postgres_options: str = ""  # more server options (EmbeddedPostgres.options)
    postgres: EmbeddedPostgres | None = None
    nats: NatsServer | None = None
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.data_dir = self.data_dir.resolve()
        for service, count in self.replicas.items():
            if count < 1 or (count > 1 and service not in SCALABLE):
                raise ValueError(f"{service}: replicas must be 1, or 1 or more for {SCALABLE}")
        self.ports = {name: self.ports.get(name) or free_port() for name in DEFAULT_PORTS}
        self.ports.update({name: free_port() for name in self.instances if name not in self.ports})
        # Each gRPC service serves Prometheus /metrics on a port of its own.
        self.metrics_ports = {
            name: free_port() for name in self.instances if base(name) in GRPC_SERVICES
        }
        self.log_dir = self.data_dir / "logs"
        self.secrets: dict[str, str] = {}

    @property
    def instances(self) -> list[str]:
        """Every process's name: a service, then its replicas ("search-2", ...)."""
        return [
            name
            for service in self.services
            for name in [service]
            + [f"{service}-{k}" for k in range(2, self.replicas.get(service, 1) + 1)]
        ]

    def replicas_of(self, service: str) -> list[str]:
        return [name for name in self.instances if base(name) == service]

    def target(self, service: str) -> str:
        """A gRPC target naming every replica (clients balance round robin across them)."""
        addresses = [self.address(name) for name in self.replicas_of(service)]
        return addresses[0] if len(addresses) == 1 else "ipv4:" + ",".join(addresses)

    @property
    def admin_auth(self) -> dict[str, str]:
        """The Authorization header of the dev stack's admin (writes approved at once)."""
        return {"Authorization": f"Bearer {self.secrets['admin_token']}"}

    @property
    def contributor_auth(self) -> dict[str, str]:
        """The Authorization header of the dev stack's contributor (adds items and photos)."""
        return {"Authorization": f"Bearer {self.secrets['contributor_token']}"}

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
        self.postgres = EmbeddedPostgres(
            self.data_dir / "postgres", port=self.ports["postgres"], options=self.postgres_options
        )
        self.postgres.start()
        for database in ("catalog", "search"):
            self.postgres.create_database(database)
        self.nats = NatsServer(
            self.data_dir / "nats", port=self.ports["nats"], log_file=self.log_dir / "nats.log"
        )
        self.nats.start()

    def env_for(self, name: str) -> dict[str, str]:
        assert self.postgres and self.nats
        service = base(name)
        models = str(self.data_dir / "models")
        common = {"LOG_FORMAT": "json"}
        per_service = {
            "catalog": {
                "GRPC_PORT": str(self.ports[name]),
                "DATABASE_URL": self.postgres.url("catalog"),
                "NATS_URL": self.nats.url,
                "SETTINGS_KEY": self.secrets["settings_key"],
            },
            "search": {
                "GRPC_PORT": str(self.ports[name]),
                "DATABASE_URL": self.postgres.url("search"),
                "NATS_URL": self.nats.url,
                "CATALOG_ADDR": self.address("catalog"),
            },
            "embedder": {
                "GRPC_PORT": str(self.ports[name]),
                "NATS_URL": self.nats.url,
                "CATALOG_ADDR": self.address("catalog"),
                "MODEL_CACHE_DIR": models,
            },
            "fallback": {
                "GRPC_PORT": str(self.ports[name]),
                "CATALOG_ADDR": self.address("catalog"),
            },
            "gateway": {
                "HTTP_PORT": str(self.ports["gateway"]),
                "CATALOG_ADDR": self.address("catalog"),
                "SEARCH_ADDR": self.target("search"),
                "EMBEDDER_ADDR": self.target("embedder"),
                "FALLBACK_ADDR": self.address("fallback"),
                "ADMIN_TOKEN": self.secrets["admin_token"],
                "CONTRIBUTOR_TOKEN": self.secrets["contributor_token"],
                "MODEL_DIR": models,
            },
        }[service]
        if name in self.metrics_ports:
            per_service["METRICS_PORT"] = str(self.metrics_ports[name])
        prefix = "EMBED_" if service == "embedder" else f"{service.upper()}_"
        env = {**os.environ, **{prefix + k: v for k, v in {**common, **per_service}.items()}}
        env.update(self.extra_env)
        return env

    def start_service(self, service: str) -> subprocess.Popen[bytes]:
        """Start one process: a service or one of its replicas ("search-2")."""
        log = open(self.log_dir / f"{service}.log", "ab")
        process = subprocess.Popen(
            # A SIGKILLed supervisor leaves no orphan (child.py says why not preexec_fn).
            [sys.executable, "-m", CHILD_MODULE, str(os.getpid()), MODULES[base(service)]],
            env=self.env_for(service),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.processes[service] = process
        return process

    def start(self, timeout: float = 60.0) -> "Mesh":
        """Everything, or nothing left running: a service that fails to start stops the
        rest, Postgres and NATS included (`with` never calls __exit__ then)."""
        try:
            self.start_infrastructure()
            self.start_services(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def start_services(self, timeout: float = 60.0) -> None:
        """Every service's processes, once Postgres and NATS run; waits until all serve."""
        for name in self.instances:
            self.start_service(name)
        self.wait_until_serving(timeout)

    def stop_services(self) -> None:
        """Every process, last started first (they drain); Postgres and NATS stay up."""
        for name in reversed(list(self.processes)):
            self.stop_service(name)

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
        pending = list(self.instances)
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
        self.stop_services()
        if self.nats:
            self.nats.stop()
        if self.postgres:
            self.postgres.stop()

    def __enter__(self) -> "Mesh":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
