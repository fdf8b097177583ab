"""The Makefile and the pre-commit hooks stay usable: every target says what it does in
`make help`, the quick `make check` never needs apt or a model build, and the hooks run
the venv's own tools (nothing downloaded)."""

import re
import subprocess
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[3]
MAKEFILE = (REPO / "Makefile").read_text()


def _targets() -> dict[str, str]:
    """target -> its rule line, for the rules that name real targets."""
    rules = re.findall(r"^([a-z][a-z0-9-]*):(.*)$", MAKEFILE, flags=re.MULTILINE)
    return {name: line for name, line in rules}


def test_every_target_has_a_help_line() -> None:
    undocumented = [name for name, line in _targets().items() if "## " not in line]
    assert undocumented == []


def test_help_lists_every_target() -> None:
    shown = subprocess.run(
        ["make", "--no-print-directory", "help"], cwd=REPO, capture_output=True, text=True
    ).stdout
    listed = {line.split()[0] for line in shown.splitlines() if line.strip()}
    assert listed == set(_targets())


def test_check_needs_neither_apt_nor_model_builds() -> None:
    check = _targets()["check"]
    assert "system-deps" not in check
    recipe = MAKEFILE.split("\ncheck:", 1)[1].split("\n\n", 1)[0]
    assert '-m "not slow"' in recipe


def test_pre_commit_hooks_are_local_and_use_the_venv() -> None:
    config = yaml.safe_load((REPO / ".pre-commit-config.yaml").read_text())
    hooks = [hook for repo in config["repos"] for hook in repo["hooks"]]
    assert {repo["repo"] for repo in config["repos"]} == {"local"}
    assert {hook["id"] for hook in hooks} >= {"ruff", "ruff-format", "protos"}
    for hook in hooks:
        assert hook["entry"].startswith((".venv/bin/", "make ")), hook["id"]
