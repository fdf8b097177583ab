"""The readiness probe components/tls runs (grpc_health_probe.py) against a real service
server with mutual TLS, using certificates laid out the way cert-manager writes them."""

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from photosearch.common.grpc_server import GrpcServer, create_server
from tests.support.certs import Authority

PROBE = Path(__file__).resolve().parents[3] / "deploy/k8s/components/tls/grpc_health_probe.py"
SERVICE_NAME = "photosearch.catalog.v1.CatalogService"


def issue(directory: Path, dns_name: str) -> Path:
    """A private CA and a leaf for `dns_name` (server + client auth, as cert-manager's
    usages [server auth, client auth]): tls.crt, tls.key, ca.crt."""
    return Authority.create("photosearch-ca").issue(directory, dns_name, dns_names=[dns_name])


async def probe(*args: str) -> int:
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(PROBE), *args,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    return await asyncio.wait_for(process.wait(), timeout=30)


@pytest.fixture
async def catalog_with_tls(tmp_path: Path) -> AsyncIterator[tuple[GrpcServer, Path]]:
    tls = issue(tmp_path / "catalog", "catalog")
    server = await create_server("127.0.0.1:0", [SERVICE_NAME], str(tls))
    await server.server.start()
    yield server, tls
    await server.server.stop(None)


async def test_ready_only_while_the_service_reports_serving(
    catalog_with_tls: tuple[GrpcServer, Path],
) -> None:
    server, tls = catalog_with_tls
    assert await probe(str(server.port), "catalog", str(tls)) == 1  # starts NOT_SERVING
    await server.set_serving(True)
    assert await probe(str(server.port), "catalog", str(tls)) == 0
    await server.set_serving(False)  # e.g. Postgres went away
    assert await probe(str(server.port), "catalog", str(tls)) == 1


async def test_refused_with_a_certificate_from_another_ca_or_for_another_name(
    catalog_with_tls: tuple[GrpcServer, Path], tmp_path: Path
) -> None:
    server, tls = catalog_with_tls
    await server.set_serving(True)
    stranger = issue(tmp_path / "stranger", "catalog")
    assert await probe(str(server.port), "catalog", str(stranger)) == 1
    # The server's certificate is for "catalog": a probe expecting "search" must not trust it.
    assert await probe(str(server.port), "search", str(tls)) == 1
    assert await probe(str(server.port), "catalog", str(tls)) == 0


async def test_usage_errors_are_not_mistaken_for_health() -> None:
    assert await probe("50051") == 2
