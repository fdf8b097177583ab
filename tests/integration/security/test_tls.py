"""gRPC with TLS from mounted certificates (`*_TLS_DIR` holding tls.crt, tls.key and, for
mutual TLS, ca.crt), as components/tls mounts them: catalog, fallback and the gateway run
as real processes, each with its own certificate from one private CA. Calls between them
go over mutual TLS; a client without a certificate, with one from another CA, or in
plaintext is refused. Without ca.crt a service serves TLS and asks for no certificate."""

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from cryptography.fernet import Fernet
from grpc_health.v1 import health_pb2, health_pb2_grpc

from photosearch.catalog.v1 import catalog_pb2, catalog_pb2_grpc
from photosearch_catalog.config import CatalogSettings
from photosearch_catalog.server import build_server as build_catalog
from photosearch_devstack.mesh import Mesh
from photosearch_devstack.nats_server import NatsServer
from photosearch_fallback.config import FallbackSettings
from photosearch_fallback.server import build_server as build_fallback
from tests.support.certs import Authority
from tests.support.mesh import eventually
from tests.support.services import start_service

pytestmark = pytest.mark.slow
SERVICES = ["catalog", "fallback", "gateway"]


def credentials(folder: Path, *, with_certificate: bool = True) -> grpc.ChannelCredentials:
    return grpc.ssl_channel_credentials(
        root_certificates=(folder / "ca.crt").read_bytes(),
        private_key=(folder / "tls.key").read_bytes() if with_certificate else None,
        certificate_chain=(folder / "tls.crt").read_bytes() if with_certificate else None,
    )


def health(address: str, creds: grpc.ChannelCredentials | None) -> str:
    """The health status, or the error code of a call that did not get through."""
    channel = grpc.secure_channel(address, creds) if creds else grpc.insecure_channel(address)
    with channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=5
            )
        except grpc.RpcError as exc:
            return str(exc.code().name)
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))


@dataclass
class TlsMesh:
    mesh: Mesh
    certs: dict[str, Path]
    client: grpc.ChannelCredentials


@pytest.fixture(scope="module")
def tls_mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsMesh]:
    root = tmp_path_factory.mktemp("tls")
    ca = Authority.create()
    certs = {name: ca.issue(root / "certs" / name, name) for name in [*SERVICES, "client"]}
    env = {f"{name.upper()}_TLS_DIR": str(certs[name]) for name in SERVICES}
    mesh = Mesh(root / "data", services=SERVICES, extra_env=env)
    client = credentials(certs["client"])
    try:
        mesh.start_infrastructure()
        for name in SERVICES:
            mesh.start_service(name)
        for name in ("catalog", "fallback"):  # fallback is ready once it reaches catalog
            address = mesh.address(name)

            def serving(address: str = address) -> bool:
                return health(address, client) == "SERVING"

            eventually(serving, 60, f"{name} up")
        yield TlsMesh(mesh, certs, client)
    finally:
        mesh.stop()


def test_services_serve_mutual_tls_and_refuse_other_clients(tls_mesh: TlsMesh) -> None:
    mesh = tls_mesh.mesh
    stranger = Authority.create("someone-else").issue(mesh.data_dir / "stranger", "client")
    for name in ("catalog", "fallback"):
        address = mesh.address(name)
        assert health(address, tls_mesh.client) == "SERVING"
        assert health(address, None) == "UNAVAILABLE", "plaintext"
        assert health(address, credentials(tls_mesh.certs["client"], with_certificate=False)) == (
            "UNAVAILABLE"
        ), "TLS without a client certificate"
        assert health(address, credentials(stranger)) == "UNAVAILABLE", "another CA's client"
        system_roots = grpc.ssl_channel_credentials()
        assert health(address, system_roots) == "UNAVAILABLE", "a client that trusts other CAs"
    with grpc.secure_channel(mesh.address("catalog"), tls_mesh.client) as channel:
        settings = catalog_pb2_grpc.CatalogServiceStub(channel).GetSettings(
            catalog_pb2.GetSettingsRequest(), timeout=10
        )
    assert settings.photo_search_enabled is False


def test_the_gateway_calls_the_services_over_mutual_tls(tls_mesh: TlsMesh) -> None:
    mesh = tls_mesh.mesh
    admin = mesh.admin_auth
    with httpx.Client(base_url=mesh.gateway_url, timeout=30) as http:

        def up() -> bool:
            try:
                return http.get("/healthz").status_code == 200
            except httpx.TransportError:
                return False

        eventually(up, 60, "the gateway up")
        turn_on = {"photo_search_enabled": True}
        changed = http.put("/api/v1/admin/settings", headers=admin, json=turn_on)
        assert changed.status_code == 200, changed.text
        assert http.get("/api/v1/admin/settings", headers=admin).json()["photo_search_enabled"]
        services = http.get("/readyz").json()["services"]
    assert services["catalog"] == "SERVING" and services["fallback"] == "SERVING"


async def serves_tls_without_client_certificates(
    build: Callable[[Any], Awaitable[Any]], settings: Any, ca: Authority, folder: Path
) -> None:
    trusting = ca.issue(folder / "client", "client")  # only its ca.crt is used
    service = await start_service(build, settings, wait=False)
    try:
        address = service.address
        answered = await _health(address, credentials(trusting, with_certificate=False))
        assert answered in ("SERVING", "NOT_SERVING"), answered  # it answered over TLS
        assert await _health(address, None) == "UNAVAILABLE", "plaintext"
    finally:
        await service.stop()


async def test_without_a_ca_catalog_serves_tls_and_asks_no_certificate(
    tmp_path: Path, database_url: str, nats_server: NatsServer
) -> None:
    ca = Authority.create()
    settings = CatalogSettings(
        grpc_port=0,
        tls_dir=str(ca.issue(tmp_path / "catalog", "catalog", with_ca=False)),
        database_url=database_url,
        nats_url=nats_server.url,
        settings_key=Fernet.generate_key().decode(),  # type: ignore[arg-type]
    )
    await serves_tls_without_client_certificates(build_catalog, settings, ca, tmp_path)


async def test_without_a_ca_fallback_serves_tls_and_asks_no_certificate(tmp_path: Path) -> None:
    ca = Authority.create()
    server_only = ca.issue(tmp_path / "fallback", "fallback", with_ca=False)
    settings = FallbackSettings(grpc_port=0, tls_dir=str(server_only), catalog_addr="127.0.0.1:1")
    await serves_tls_without_client_certificates(build_fallback, settings, ca, tmp_path)


async def _health(address: str, creds: grpc.ChannelCredentials | None) -> str:
    channel = (
        grpc.aio.secure_channel(address, creds) if creds else grpc.aio.insecure_channel(address)
    )
    async with channel:
        try:
            reply = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=5
            )
        except grpc.aio.AioRpcError as exc:
            return str(exc.code().name)
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))
