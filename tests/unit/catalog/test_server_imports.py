"""The catalog's server carries none of its command-line clients: no serving module
imports photosearch_catalog.cli or what only the clients need (tqdm, installed with
the [cli] extra, which the server's image leaves out)."""

import json
import subprocess
import sys

CLIENT_ONLY = ("photosearch_catalog.cli", "tqdm")

# Imports every module of the package outside cli/ (the entry point too: it only
# serves under __main__), then lists what got loaded. Found by name, not with
# pkgutil.walk_packages, which would import cli/__init__ to look inside it.
_PROBE = """
import json, os, pkgutil, sys
import photosearch_catalog

def modules(path, prefix):
    for found in pkgutil.iter_modules(path, prefix):
        if found.name == "photosearch_catalog.cli":
            continue
        yield found.name
        if found.ispkg:
            folder = os.path.join(found.module_finder.path, found.name.rsplit(".", 1)[-1])
            yield from modules([folder], found.name + ".")

serving = sorted(modules(photosearch_catalog.__path__, "photosearch_catalog."))
for name in serving:
    __import__(name)
print(json.dumps({"serving": serving, "loaded": sorted(sys.modules)}))
"""


def _is_client_only(module: str) -> bool:
    return any(module == name or module.startswith(name + ".") for name in CLIENT_ONLY)


def test_no_serving_module_imports_the_command_line_clients() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=120, check=True
    )
    probe = json.loads(result.stdout.splitlines()[-1])
    # The probe reached the server (a probe that imported nothing would prove nothing).
    assert {"photosearch_catalog.__main__", "photosearch_catalog.server"} <= set(probe["serving"])
    assert [m for m in probe["loaded"] if _is_client_only(m)] == []
