"""The readiness probe components/tls runs (grpc_health_probe.py) against a real service
server with mutual TLS, using certificates laid out the way cert-manager writes them."""

import asyncio
import datetime
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from photosearch.common.grpc_server import GrpcServer, create_server

PROBE = Path(__file__).resolve().parents[3] / "deploy/k8s/components/tls/grpc_health_probe.py"
SERVICE_NAME = "photosearch.catalog.v1.CatalogService"
# cert-manager usages [server auth, client auth]: the pod's certificate serves both ways.
BOTH_AUTH = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def issue(directory: Path, dns_name: str) -> Path:
    """A private CA and a leaf for `dns_name` (server + client auth): tls.crt, tls.key, ca.crt."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("photosearch-ca"))
        .issuer_name(_name("photosearch-ca"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(_name(dns_name))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(dns_name)]), critical=False)
        .add_extension(x509.ExtendedKeyUsage(BOTH_AUTH), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True)
    (directory / "ca.crt").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (directory / "tls.crt").write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    (directory / "tls.key").write_bytes(_pem(key))
    return directory


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
