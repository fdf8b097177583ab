"""No secret value lives in the repository: production renders none (operators and secret
managers provide them), and the dev overlay's come from a generator that writes fresh random
values into a git-ignored folder."""

import base64
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

from photosearch_catalog.config import settings_cipher
from tests.unit.deploy.manifests import K8S, REPO, Render, name_of

GENERATED = {
    "postgres.env": {"superuser-password", "catalog-password", "search-password"},
    "catalog-db.env": {"uri"},
    "search-db.env": {"uri"},
    "catalog.env": {"settings-key"},
    "gateway.env": {"admin-token"},
    "nats.env": {"password"},
}
URL_SAFE = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def _generate(directory: Path, *args: str) -> dict[str, dict[str, str]]:
    dev = directory / "dev"
    if not dev.exists():
        dev.mkdir(parents=True)
        shutil.copy(K8S / "overlays" / "dev" / "generate-secrets.sh", dev)
    subprocess.run(["sh", str(dev / "generate-secrets.sh"), *args], check=True, capture_output=True)
    values = {}
    for path in sorted((dev / "secrets").iterdir()):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        values[path.name] = dict(line.split("=", 1) for line in path.read_text().splitlines())
    return values


def test_the_generator_writes_strong_random_secrets_once(tmp_path: Path) -> None:
    first = _generate(tmp_path)
    assert {name: set(pairs) for name, pairs in first.items()} == GENERATED
    passwords = first["postgres.env"]
    assert len(set(passwords.values())) == 3
    nats_password = first["nats.env"]["password"]
    for value in [*passwords.values(), first["gateway.env"]["admin-token"], nats_password]:
        assert len(value) >= 32 and set(value) <= URL_SAFE, value
    # NATS's config parser reads it (data/nats/auth.conf): a string only if a letter leads.
    assert nats_password[0].isalpha(), nats_password
    settings_cipher(first["catalog.env"]["settings-key"])  # catalog accepts it as a Fernet key
    assert _generate(tmp_path) == first  # kept: the database already has these passwords
    rotated = _generate(tmp_path, "--force")
    for name, pairs in rotated.items():
        for key, value in pairs.items():
            assert value != first[name][key], (name, key)


def test_a_secret_added_later_is_written_beside_the_kept_ones(tmp_path: Path) -> None:
    first = _generate(tmp_path)
    (tmp_path / "dev" / "secrets" / "nats.env").unlink()  # an install from before NATS logins
    second = _generate(tmp_path)
    assert set(second) == set(GENERATED)
    assert {k: v for k, v in second.items() if k != "nats.env"} == {
        k: v for k, v in first.items() if k != "nats.env"
    }
    assert second["nats.env"] != first["nats.env"]


def test_two_installs_never_share_a_secret(tmp_path: Path) -> None:
    one, two = _generate(tmp_path / "one"), _generate(tmp_path / "two")
    assert one["gateway.env"] != two["gateway.env"]
    assert one["catalog.env"] != two["catalog.env"]


# Secret (before its hash suffix) -> the generator's file it is made from.
SOURCES = {
    "postgres-secrets": "postgres.env",
    "catalog-db-app": "catalog-db.env",
    "search-db-app": "search-db.env",
    "catalog-secrets": "catalog.env",
    "gateway-secrets": "gateway.env",
    "nats-auth": "nats.env",
}


def test_the_dev_render_takes_every_secret_from_the_generator(
    renders: dict[str, Render], k8s_tree: Path
) -> None:
    rendered = {
        name_of(secret).rsplit("-", 1)[0]: {
            key: base64.b64decode(value).decode() for key, value in secret["data"].items()
        }
        for secret in renders["dev"].kinds("Secret")
    }
    assert set(rendered) == set(SOURCES)
    for secret, source in SOURCES.items():
        text = (k8s_tree / "overlays" / "dev" / "secrets" / source).read_text()
        assert rendered[secret] == dict(line.split("=", 1) for line in text.splitlines())


def _tracked(path: str) -> list[str]:
    result = subprocess.run(
        ["git", "ls-files", path], cwd=REPO, capture_output=True, text=True, check=True
    )
    return result.stdout.split()


def test_the_repository_holds_no_secret_values() -> None:
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    tracked = _tracked("deploy")
    assert tracked, "deploy/ is not tracked"
    assert not [f for f in tracked if "/secrets/" in f or f.endswith(".env.local")]
    for file in tracked:
        if file.endswith((".yaml", ".yml")):
            for doc in yaml.safe_load_all((REPO / file).read_text()):
                if isinstance(doc, dict) and doc.get("kind") == "Secret":
                    raise AssertionError(f"{file} commits a Secret")
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", "deploy/k8s/overlays/dev/secrets/gateway.env"], cwd=REPO
    )
    assert ignored.returncode == 0, "the dev secrets folder is not git-ignored"
