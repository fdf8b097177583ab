"""docs/deploy.md stays true to the manifests: the Secrets it tells operators to create, the
folders it describes, the admin routes and the KEDA consumer it quotes, the version floor."""

import re

from photosearch.common.subjects import embed_consumer_name
from tests.unit.deploy.manifests import (
    K8S,
    OLDEST_SUPPORTED,
    OUT_OF_BAND,
    REPO,
    Render,
    all_containers,
    name_of,
)

DOCS = (REPO / "docs" / "deploy.md").read_text()


def _secret_rows() -> set[tuple[str, str]]:
    """(Secret, key) of the docs' Secrets table."""
    rows = set()
    for line in DOCS.splitlines():
        cells = [c.strip() for c in line.split("|")]
        if len(cells) > 3 and cells[1].startswith("`") and cells[2].startswith("`"):
            secret = cells[1].strip("`")
            for key in re.findall(r"`([a-z.-]+)`", cells[2]):
                rows.add((secret, key))
    return rows


def test_the_secrets_table_lists_every_secret_key_a_pod_reads(renders: dict[str, Render]) -> None:
    read = set()
    for render in renders.values():
        for workload in render.workloads:
            for _, c in all_containers(workload):
                for entry in c.get("env", []):
                    ref = entry.get("valueFrom", {}).get("secretKeyRef")
                    if ref:
                        # The dev overlay's generated Secrets carry a hash suffix.
                        name = ref["name"]
                        if render.name.startswith("dev"):
                            name = name.rsplit("-", 1)[0]
                        read.add((name, ref["key"]))
    documented = _secret_rows()
    assert read <= documented, read - documented
    for secret in OUT_OF_BAND:
        assert any(name == secret for name, _ in documented), secret


def test_every_overlay_and_component_is_described() -> None:
    for group in ("overlays", "components", "data"):
        for folder in sorted((K8S / group).iterdir()):
            if folder.is_dir():
                assert f"{folder.name}/" in DOCS, f"docs/deploy.md never mentions {group}/{folder}"


def test_quoted_admin_routes_exist() -> None:
    routes = (REPO / "gateway" / "photosearch_gateway" / "routes" / "admin.py").read_text()
    prefix = re.search(r'prefix="([^"]+)"', routes)
    assert prefix
    quoted = set(re.findall(r"/api/v1/admin/[a-z/]+[a-z]", DOCS))
    assert quoted
    for route in quoted:
        assert f'"{route.removeprefix(prefix.group(1))}"' in routes, route


def test_quoted_consumer_and_model_match_the_manifests(renders: dict[str, Render]) -> None:
    (config_map,) = [
        c for c in renders["prod"].kinds("ConfigMap") if name_of(c).startswith("embedder-config")
    ]
    model = config_map["data"]["EMBED_MODEL"]
    assert f"`{model}`" in DOCS
    assert f"`{embed_consumer_name(model)}`" in DOCS


def test_the_version_floor_is_the_one_tested() -> None:
    major_minor = ".".join(OLDEST_SUPPORTED.split(".")[:2])
    assert f"Kubernetes **{major_minor} or newer**" in DOCS
