"""Every overlay of deploy/k8s rendered once per session, from a scratch copy of the tree
(the dev overlay needs the secrets its generator writes; optional components are switched
on the way an operator would: by listing them in the overlay's kustomization; an operator's
own overlay on prod is the one docs/deploy.md shows)."""

import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from tests.unit.deploy.manifests import K8S, LAYERED, Render, documented_overlay, kustomize

# render name -> (overlay, components added to an overlay's kustomization.yaml)
RENDERS: dict[str, tuple[str, dict[str, list[str]]]] = {
    "dev": ("dev", {}),
    "prod": ("prod", {}),
    "gpu": ("gpu", {}),
    # Every optional component at once, the next-model embedder first (it must be there
    # before tls patches the embedders).
    "dev+next+tls+keda": (
        "dev",
        {"dev": ["embedder-next", "tls", "keda", "nats-tls", "monitoring"]},
    ),
    "prod+tls+keda": (
        "prod",
        {"prod": ["tls", "keda", "cnpg-backup", "nats-tls", "monitoring"]},
    ),
    # gpu layers on prod: a component it adds must come out like prod's own objects.
    "gpu+next": ("gpu", {"gpu": ["embedder-next"]}),
    # The overlay docs/deploy.md shows for layering on prod (written by k8s_tree).
    "layered": (LAYERED, {}),
}


def enable_components(tree: Path, overlay: str, components: list[str]) -> None:
    path = tree / "overlays" / overlay / "kustomization.yaml"
    kustomization = yaml.safe_load(path.read_text())
    listed = kustomization.setdefault("components", [])
    # Listed before the overlay's own components so embedder-next precedes gpu.
    kustomization["components"] = [f"../../components/{c}" for c in components] + listed
    path.write_text(yaml.safe_dump(kustomization, sort_keys=False))


def generate_dev_secrets(tree: Path) -> None:
    script = tree / "overlays" / "dev" / "generate-secrets.sh"
    subprocess.run(["sh", str(script)], check=True, capture_output=True, timeout=30)


@pytest.fixture(scope="session")
def k8s_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scratch copy of deploy/k8s without any local secrets, then with fresh dev ones."""
    tree = tmp_path_factory.mktemp("deploy") / "k8s"
    shutil.copytree(K8S, tree, ignore=shutil.ignore_patterns("secrets"))
    generate_dev_secrets(tree)
    layered = tree / "overlays" / LAYERED
    layered.mkdir()
    (layered / "kustomization.yaml").write_text(documented_overlay())
    return tree


@pytest.fixture(scope="session")
def renders(k8s_tree: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Render]:
    overlays: dict[str, Path] = {}
    for name, (overlay, extra) in RENDERS.items():
        tree = k8s_tree
        if extra:
            tree = tmp_path_factory.mktemp("variant") / "k8s"
            shutil.copytree(k8s_tree, tree)
            for target, components in extra.items():
                enable_components(tree, target, components)
        overlays[name] = tree / "overlays" / overlay
    # kubectl spends most of its time starting: run a few at once.
    with ThreadPoolExecutor(max_workers=3) as pool:
        objects = dict(zip(overlays, pool.map(kustomize, overlays.values()), strict=True))
    return {name: Render(name, objects[name]) for name in RENDERS}


@pytest.fixture(scope="session", params=list(RENDERS))
def render(request: pytest.FixtureRequest, renders: dict[str, Render]) -> Render:
    return renders[request.param]
