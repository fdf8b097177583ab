"""One license for the whole repository, declared by every package."""

import json
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
PACKAGES = ["libs/common", "libs/devstack", "gateway", *(f"services/{s}" for s in (
    "catalog", "search", "embedder", "fallback"))]  # fmt: skip


def test_the_license_text_is_apache_2():
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text


def test_every_package_declares_it():
    for package in PACKAGES:
        project = tomllib.loads((ROOT / package / "pyproject.toml").read_text())["project"]
        assert project.get("license") == "Apache-2.0", package
    web = json.loads((ROOT / "gateway/web/package.json").read_text())
    assert web["license"] == "Apache-2.0"
