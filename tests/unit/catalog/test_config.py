"""CATALOG_SETTINGS_KEY is required and must be a Fernet key: fail fast, say how to fix."""

import subprocess
import sys

import pytest
from cryptography.fernet import Fernet
from pydantic import ValidationError

from photosearch_catalog.config import CatalogSettings


def test_a_fernet_key_is_accepted(monkeypatch) -> None:
    monkeypatch.setenv("CATALOG_SETTINGS_KEY", Fernet.generate_key().decode())
    monkeypatch.setenv("CATALOG_MAX_IMAGE_BYTES", "5000000")
    settings = CatalogSettings()
    assert settings.max_image_bytes == 5_000_000
    token = settings.cipher().encrypt(b"secret")
    assert settings.cipher().decrypt(token) == b"secret"
    assert "secret" not in repr(settings)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "is empty"),
        ("not-a-key", "key 1 of CATALOG_SETTINGS_KEY is malformed"),
        (Fernet.generate_key().decode() + ",short", "key 2 of CATALOG_SETTINGS_KEY is malformed"),
    ],
)
def test_a_malformed_key_is_refused_with_the_fix(monkeypatch, value, message) -> None:
    monkeypatch.setenv("CATALOG_SETTINGS_KEY", value)
    with pytest.raises(ValidationError) as err:
        CatalogSettings()
    assert message in str(err.value)
    assert "Fernet.generate_key" in str(err.value)


def test_the_service_refuses_to_start_without_a_key(monkeypatch) -> None:
    monkeypatch.delenv("CATALOG_SETTINGS_KEY", raising=False)
    result = subprocess.run(
        [sys.executable, "-m", "photosearch_catalog"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "CATALOG_SETTINGS_KEY" in result.stderr and "required" in result.stderr.lower()


@pytest.mark.parametrize("name", ["S3_ENDPOINT_URL", "CATALOG_S3_ENDPOINT_URL"])
def test_the_s3_endpoint_is_read_under_either_name(monkeypatch, name: str) -> None:
    monkeypatch.setenv("CATALOG_SETTINGS_KEY", Fernet.generate_key().decode())
    monkeypatch.setenv(name, "http://minio.storage:9000")
    settings = CatalogSettings()
    assert settings.s3_endpoint_url == "http://minio.storage:9000"
    limits = settings.fetch_limits()
    assert (limits.allow_private, limits.max_redirects) == (False, 3)  # the safe defaults
