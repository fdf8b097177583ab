"""NATS logins and TLS, from the settings to nats.connect and through the manifests: the
services' NATS settings become the options the shared connect helper passes to nats-py, and
every render gives the servers and their clients the same user, the same password (one Secret
key) and, with components/nats-tls, a CA that signed the server's certificate."""

import re
import ssl
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from pydantic import ValidationError
from pydantic_settings import SettingsConfigDict

from photosearch.common.nats import connect_options
from photosearch.common.settings import NatsSettings
from tests.support.certs import Authority
from tests.unit.deploy.manifests import (
    K8S,
    Obj,
    Render,
    config_maps_of,
    name_of,
    pod_labels,
    pod_spec,
)

# Which deployments talk to NATS, and the prefix of their settings.
CLIENTS = {"catalog": "CATALOG_", "search": "SEARCH_", "embedder": "EMBED_"}


class ClientSettings(NatsSettings):
    model_config = SettingsConfigDict(env_prefix="DEMO_")


def test_no_credentials_connect_to_the_address_alone() -> None:
    assert connect_options(ClientSettings(nats_url="nats://nats:4222").nats_url) == {
        "servers": ["nats://nats:4222"]
    }


def test_a_user_and_password_reach_nats_connect_as_they_are() -> None:
    password = "n0t/a:url@safe%pass word"  # every character a URL would mangle
    settings = ClientSettings(
        nats_url="nats://nats:4222", nats_user="photo@search", nats_password=password
    )
    options = connect_options(settings.nats_url)
    assert options == {
        "servers": ["nats://nats:4222"],
        "user": "photo@search",
        "password": password,
    }


def test_a_token_or_a_credentials_file_instead(tmp_path: Path) -> None:
    token = ClientSettings(nats_url="nats://nats:4222", nats_token="s3cr:et/")
    assert connect_options(token.nats_url) == {
        "servers": ["nats://nats:4222"],
        "token": "s3cr:et/",
    }
    creds = tmp_path / "user.creds"
    nkeys = ClientSettings(nats_url="nats://nats:4222", nats_creds_file=str(creds))
    assert connect_options(nkeys.nats_url) == {
        "servers": ["nats://nats:4222"],
        "user_credentials": str(creds),
    }


def test_a_tls_ca_makes_tls_required_from_the_first_byte(tmp_path: Path) -> None:
    ca = tmp_path / "ca.crt"
    ca.write_bytes(Authority.create().pem)
    settings = ClientSettings(
        nats_url="nats://nats:4222",
        nats_user="photosearch",
        nats_password="pw",
        nats_tls_ca=str(ca),
    )
    options = connect_options(settings.nats_url)
    context = options.pop("tls")
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert len(context.get_ca_certs()) == 1  # this CA only, not the system's roots
    assert options == {
        "servers": ["nats://nats:4222"],
        "user": "photosearch",
        "password": "pw",
        # Every server of a cluster (advertised by address) is checked against this name.
        "tls_hostname": "nats",
        # No plaintext exchange first that a server without the certificate could answer.
        "tls_handshake_first": True,
    }
    system = connect_options(ClientSettings(nats_url="tls://nats.example.com:4222").nats_url)
    assert system["tls_handshake_first"] and system["tls_hostname"] == "nats.example.com"
    missing = ClientSettings(nats_url="nats://nats:4222", nats_tls_ca=str(tmp_path / "no.crt"))
    with pytest.raises(FileNotFoundError):
        connect_options(missing.nats_url)


@pytest.mark.parametrize(
    "fields",
    [
        {"nats_password": "pw"},  # whose?
        {"nats_user": "u", "nats_token": "t"},
        {"nats_url": "nats://u:p@nats:4222", "nats_user": "v", "nats_password": "q"},
        {"nats_url": "nats://nats:4222?tls_ca=/a", "nats_tls_ca": "/b"},
    ],
)
def test_contradicting_nats_settings_are_refused_at_start(fields: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        ClientSettings(**fields)


def test_the_environment_names_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEMO_NATS_URL", "nats://nats:4222")
    monkeypatch.setenv("DEMO_NATS_USER", "photosearch")
    monkeypatch.setenv("DEMO_NATS_PASSWORD", "from-the-secret")
    options = connect_options(ClientSettings().nats_url)
    assert (options["user"], options["password"]) == ("photosearch", "from-the-secret")


def test_unknown_url_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="tlsca"):
        connect_options("nats://nats:4222?tlsca=/etc/ca.crt")


# The manifests.


def _auth_conf_user() -> str:
    match = re.search(r"^\s*user:\s*(\S+)\s*$", (K8S / "data/nats/auth.conf").read_text(), re.M)
    assert match
    return match.group(1)


def _env(container: Obj) -> dict[str, Obj]:
    return {e["name"]: e for e in container.get("env", [])}


def _nats_config(render: Render) -> dict[str, str]:
    nats = render.get("StatefulSet", "nats")
    (volume,) = [v for v in pod_spec(nats)["volumes"] if v["name"] == "config"]
    data: dict[str, str] = render.get("ConfigMap", volume["configMap"]["name"])["data"]
    return data


def _server_secret(render: Render) -> Obj:
    """The secretKeyRef the NATS server reads its clients' password from."""
    (server,) = [
        c for c in pod_spec(render.get("StatefulSet", "nats"))["containers"] if c["name"] == "nats"
    ]
    ref: Obj = _env(server)["NATS_PASSWORD"]["valueFrom"]["secretKeyRef"]
    return ref


def _tls_on(render: Render) -> bool:
    return "tls {" in _nats_config(render)["tls.conf"]


def _clients(render: Render) -> list[tuple[str, Obj]]:
    clients = []
    for deployment in render.kinds("Deployment"):
        role = pod_labels(deployment).get("app.kubernetes.io/component", "")
        if role in CLIENTS:
            clients.append((CLIENTS[role], deployment))
    assert {p for p, _ in clients} == set(CLIENTS.values())
    return clients


def test_nats_servers_require_the_login_of_the_nats_auth_secret(render: Render) -> None:
    config = _nats_config(render)
    assert "include ./auth.conf" in config["nats.conf"]
    assert config["auth.conf"] == (K8S / "data/nats/auth.conf").read_text()
    assert re.search(r"password:\s*\$NATS_PASSWORD\b", config["auth.conf"])
    ref = _server_secret(render)
    assert ref["name"].startswith("nats-auth") and ref["key"] == "password"


def test_every_nats_client_logs_in_with_the_servers_user_and_secret(
    render: Render, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each client's environment, as the pod gets it, read by its settings type."""
    secret = _server_secret(render)
    tls_on = _tls_on(render)
    for prefix, deployment in _clients(render):
        container = pod_spec(deployment)["containers"][0]
        assert _env(container)[f"{prefix}NATS_PASSWORD"]["valueFrom"]["secretKeyRef"] == secret
        env = config_maps_of(render.objects, deployment)
        for key in [k for k in env if k.startswith(prefix)]:
            monkeypatch.setenv(key, env[key])
        monkeypatch.setenv(f"{prefix}NATS_PASSWORD", "the-secret-value")
        settings_type = type(
            "Settings", (NatsSettings,), {"model_config": SettingsConfigDict(env_prefix=prefix)}
        )
        url = settings_type().nats_url
        parts = urlsplit(url)
        assert (parts.username, parts.password) == (_auth_conf_user(), "the-secret-value")
        assert (parts.hostname, parts.port) == (
            urlsplit(env[f"{prefix}NATS_URL"]).hostname,
            urlsplit(env[f"{prefix}NATS_URL"]).port,
        )
        assert ("tls_ca" in parse_qs(parts.query)) == tls_on, name_of(deployment)


def test_nats_tls_mounts_the_servers_key_on_nats_and_only_the_ca_on_clients(
    renders: dict[str, Render],
) -> None:
    assert not _tls_on(renders["prod"])  # opt-in
    checked = 0
    for render in renders.values():
        if not _tls_on(render):
            continue
        tls_conf = _nats_config(render)["tls.conf"]
        assert re.search(r"handshake_first:\s*true", tls_conf)
        (certificate,) = [c for c in render.kinds("Certificate") if name_of(c) == "nats-tls"]
        # The name the clients dial.
        hosts = {
            urlsplit(value).hostname
            for config in render.kinds("ConfigMap")
            for key, value in config["data"].items()
            if key.endswith("_NATS_URL")
        }
        assert hosts <= set(certificate["spec"]["dnsNames"])
        secret_name = certificate["spec"]["secretName"]
        nats = pod_spec(render.get("StatefulSet", "nats"))
        mounts = {m["name"]: m["mountPath"] for m in nats["containers"][0]["volumeMounts"]}
        (tls_volume,) = [
            v["name"]
            for v in nats["volumes"]
            if v.get("secret", {}).get("secretName") == secret_name
        ]
        for key in ("cert_file", "key_file"):
            path = re.search(rf"{key}:\s*(\S+)", tls_conf)
            assert path and Path(path.group(1)).parent == Path(mounts[tls_volume]), key
        for prefix, deployment in _clients(render):
            env = config_maps_of(render.objects, deployment)
            ca = Path(env[f"{prefix}NATS_TLS_CA"])
            spec = pod_spec(deployment)
            mounted = {m["mountPath"]: m["name"] for m in spec["containers"][0]["volumeMounts"]}
            volume = {v["name"]: v for v in spec["volumes"]}[mounted[str(ca.parent)]]
            assert volume["secret"]["secretName"] == secret_name
            assert volume["secret"]["items"] == [{"key": "ca.crt", "path": ca.name}]
        checked += 1
    assert checked >= 3
