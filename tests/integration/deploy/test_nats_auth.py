"""NATS logins and TLS as deployed, against the real nats-server: the server runs the shipped
auth.conf (and components/nats-tls's tls.conf) with the password the dev generator writes, and
a service's dependencies (photosearch.common.infra, as search builds them from its settings)
connect with the credentials, are refused clearly without them, and never speak to the server
in the clear when TLS is asked for."""

import asyncio
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.request import urlopen

import pytest
from structlog.testing import capture_logs

from photosearch.common import subjects
from photosearch.common.infra import Infra
from photosearch.common.nats import NatsCredentialsRefused
from photosearch_devstack.nats_server import nats_binary
from photosearch_devstack.ports import free_port, wait_for_port
from photosearch_search.config import SearchSettings
from tests.support.certs import Authority

K8S = Path(__file__).resolve().parents[3] / "deploy" / "k8s"
USER = "photosearch"  # data/nats/auth.conf


@dataclass
class Server:
    port: int
    monitor_port: int
    password: str
    ca: Path | None  # the CA of its certificate, when it speaks TLS

    def connections(self) -> list[dict[str, Any]]:
        """The server's own account of its clients (/connz, with their logins)."""
        url = f"http://127.0.0.1:{self.monitor_port}/connz?auth=true"
        with urlopen(url, timeout=5) as response:
            connections: list[dict[str, Any]] = json.load(response)["connections"]
            return connections


def generated_password(directory: Path) -> str:
    """The NATS password of a fresh dev install (overlays/dev/generate-secrets.sh)."""
    dev = directory / "dev"
    dev.mkdir()
    shutil.copy(K8S / "overlays/dev/generate-secrets.sh", dev)
    subprocess.run(["sh", str(dev / "generate-secrets.sh")], check=True, capture_output=True)
    (line,) = (dev / "secrets" / "nats.env").read_text().splitlines()
    return line.removeprefix("password=")


def start_server(directory: Path, tls: bool) -> Iterator[Server]:
    """nats-server with data/nats's auth.conf, and the tls.conf of data/nats or, with `tls`,
    of components/nats-tls (its certificate paths pointed at a leaf for localhost)."""
    conf = directory / "conf"
    conf.mkdir()
    shutil.copy(K8S / "data/nats/auth.conf", conf)
    ca = None
    if tls:
        authority = Authority.create("photosearch-nats-ca")
        leaf = authority.issue(directory / "certs", "nats", with_ca=False)
        text = (K8S / "components/nats-tls/tls.conf").read_text()
        assert "/etc/nats-tls/" in text
        (conf / "tls.conf").write_text(text.replace("/etc/nats-tls/", f"{leaf}/"))
        ca = directory / "ca.crt"
        ca.write_bytes(authority.pem)
    else:
        shutil.copy(K8S / "data/nats/tls.conf", conf)
    port, monitor_port = free_port(), free_port()
    (conf / "nats.conf").write_text(
        f"host: 127.0.0.1\nport: {port}\nhttp: 127.0.0.1:{monitor_port}\n"
        "include ./auth.conf\ninclude ./tls.conf\n"
        f"jetstream {{ store_dir: {directory / 'js'} }}\n"
    )
    password = generated_password(directory)
    process = subprocess.Popen(
        [nats_binary(), "-c", str(conf / "nats.conf")],
        env={**os.environ, "NATS_PASSWORD": password},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port("127.0.0.1", port, 20)
        yield Server(port, monitor_port, password, ca)
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture
def plain_server(tmp_path: Path) -> Iterator[Server]:
    yield from start_server(tmp_path, tls=False)


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[Server]:
    yield from start_server(tmp_path, tls=True)


def search_infra(host: str, port: int, **nats: str) -> Infra:
    """search's NATS side as its server module builds it, from SEARCH_* settings."""
    settings = SearchSettings(nats_url=f"nats://{host}:{port}", **nats)
    return Infra(service="search", nats_url=settings.nats_url)


async def test_a_service_logs_in_with_the_generated_password(plain_server: Server) -> None:
    infra = search_infra(
        "127.0.0.1", plain_server.port, nats_user=USER, nats_password=plain_server.password
    )
    await infra.start()
    try:
        assert infra.nats_ok()
        info = await infra.require_js().stream_info(subjects.EMBED_JOBS_STREAM)
        assert info.config.name == subjects.EMBED_JOBS_STREAM
        (connection,) = await asyncio.to_thread(plain_server.connections)
        assert (connection["name"], connection["authorized_user"]) == ("search", USER)
        assert "tls_version" not in connection
    finally:
        await infra.stop()


@pytest.mark.parametrize(
    ("credentials", "refused"),
    [
        ({}, "a connection without credentials"),
        ({"nats_user": USER, "nats_password": "n-wrong-password"}, f"user '{USER}'"),
        ({"nats_token": "n-not-the-token"}, "the token"),
    ],
)
async def test_without_the_password_the_service_is_refused_at_once_and_says_so(
    plain_server: Server, credentials: dict[str, str], refused: str
) -> None:
    infra = search_infra("127.0.0.1", plain_server.port, **credentials)
    with pytest.raises(NatsCredentialsRefused) as caught:
        await asyncio.wait_for(infra.start(), timeout=10)
    message = str(caught.value)
    assert message == f"NATS at 127.0.0.1:{plain_server.port} refused {refused}"
    assert "wrong" not in message and plain_server.password not in message
    assert not infra.nats_ok()


async def test_with_tls_a_service_logs_in_over_it(tls_server: Server) -> None:
    assert tls_server.ca
    infra = search_infra(
        "localhost",
        tls_server.port,
        nats_user=USER,
        nats_password=tls_server.password,
        nats_tls_ca=str(tls_server.ca),
    )
    await infra.start()
    try:
        assert infra.nats_ok()
        (connection,) = await asyncio.to_thread(tls_server.connections)
        assert (connection["name"], connection["authorized_user"]) == ("search", USER)
        assert connection["tls_version"].startswith("1.")
    finally:
        await infra.stop()


async def never_connects(infra: Infra) -> list[str]:
    """What the client logged while it kept trying (it never gives up on its own)."""
    with capture_logs() as logs:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(infra.start(), timeout=4)
    assert not infra.nats_ok()
    return [str(e.get("error", "")) for e in logs if e["event"] == "nats.error"]


async def test_with_tls_a_server_is_trusted_only_with_its_ca(
    tls_server: Server, tmp_path: Path
) -> None:
    stranger = tmp_path / "stranger.crt"
    stranger.write_bytes(Authority.create("another-ca").pem)
    errors = await never_connects(
        search_infra(
            "localhost",
            tls_server.port,
            nats_user=USER,
            nats_password=tls_server.password,
            nats_tls_ca=str(stranger),
        )
    )
    assert errors and all("CERTIFICATE_VERIFY_FAILED" in e for e in errors), errors
    # Without a CA the client waits for a greeting the TLS-first server never sends.
    await never_connects(
        search_infra(
            "localhost", tls_server.port, nats_user=USER, nats_password=tls_server.password
        )
    )


async def test_a_client_asking_for_tls_never_falls_back_to_plaintext(
    plain_server: Server, tmp_path: Path
) -> None:
    ca = tmp_path / "ca.crt"
    ca.write_bytes(Authority.create().pem)
    await never_connects(
        search_infra(
            "127.0.0.1",
            plain_server.port,
            nats_user=USER,
            nats_password=plain_server.password,
            nats_tls_ca=str(ca),
        )
    )
