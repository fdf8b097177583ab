"""The browser module @photosearch/fingerprint (static/fingerprint/): importable from any
path (relative imports only), onnxruntime-web handed in and left alone on import, one copy
that the gateway's page uses, a package.json that describes it, current API types."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from photosearch_gateway.config import DEFAULT_ORT_DIR
from photosearch_gateway.routes.assets import STATIC_DIR
from tools import api_types

MODULE = STATIC_DIR / "fingerprint"
SOURCES = sorted(MODULE.glob("*.js"))
WEB = Path(api_types.ROOT) / "gateway" / "web"
# import ... from "x", export ... from "x", import "x", import("x")
SPECIFIER = re.compile(
    r"""(?:\bimport\s*\(\s*|\bfrom\s+|^\s*import\s+)(["'`])(?P<spec>[^"'`]*)\1""", re.M
)
COMMENT = re.compile(r"^\s*//.*$", re.M)
needs_node = pytest.mark.skipif(shutil.which("node") is None, reason="needs node")


def imported(text: str) -> list[str]:
    return [m["spec"] for m in SPECIFIER.finditer(COMMENT.sub("", text))]


def specifiers(source: Path) -> list[str]:
    return imported(source.read_text())


def test_the_specifier_pattern_sees_every_kind_of_import() -> None:
    text = 'import { a } from "/x.js";\nexport * from "./y.js";\nimport "z";\nawait import(`/w`);\n'
    assert imported(text) == ["/x.js", "./y.js", "z", "/w"]
    assert imported('// e.g. import * as ort from "onnxruntime-web"\n') == []


def test_the_module_imports_only_its_own_files_by_relative_paths() -> None:
    assert {p.name for p in SOURCES} >= {"index.js", "fingerprint.js", "local.js", "runtime.js"}
    for source in SOURCES:
        text = source.read_text()
        assert "/static/" not in text and "/vendor/" not in text, source.name
        for spec in specifiers(source):
            assert spec.startswith("./"), f"{source.name} imports {spec!r}"
            assert (MODULE / spec).is_file(), f"{source.name} imports a missing {spec!r}"
        assert "onnxruntime" not in "".join(specifiers(source)), source.name


def test_package_json_describes_the_module() -> None:
    package = json.loads((MODULE / "package.json").read_text())
    assert package["name"] == "@photosearch/fingerprint"
    assert package["type"] == "module" and package["sideEffects"] is False
    assert package["license"] == "Apache-2.0"
    assert "Apache License" in (api_types.ROOT / "LICENSE").read_text()
    targets = [t if isinstance(t, str) else t["types"] for t in package["exports"].values()]
    assert all((MODULE / t).is_file() for t in targets), targets
    # Every file of the folder is published, and nothing that is not there.
    shipped = {p.name for p in MODULE.iterdir()} - {"package.json"}
    assert set(package["files"]) == shipped
    # onnxruntime-web is the caller's: a peer, whose range holds the version the gateway ships.
    assert "dependencies" not in package
    peer = package["peerDependencies"]["onnxruntime-web"]
    pinned = json.loads((WEB / "package.json").read_text())["dependencies"]["onnxruntime-web"]
    least = tuple(int(n) for n in peer.removeprefix("^").split("."))
    have = tuple(int(n) for n in pinned.split("."))
    assert peer.startswith("^") and have[0] == least[0] and have >= least, (peer, pinned)


def test_one_copy_the_page_imports_from_where_the_gateway_serves_it() -> None:
    app = (STATIC_DIR / "js" / "app.js").read_text()
    assert 'from "/static/fingerprint/index.js"' in app
    for page_script in (STATIC_DIR / "js").glob("*.js"):
        text = page_script.read_text()
        for own in ("InferenceSession", "resizeBicubic", "keepSalient", "class Fingerprinter"):
            assert own not in text, f"{page_script.name} has its own {own}"
    others = {p.name for p in STATIC_DIR.rglob("*.js") if MODULE not in p.parents}
    assert not others & {p.name for p in SOURCES}, others


async def test_the_gateway_serves_the_module(client: httpx.AsyncClient) -> None:
    for source in SOURCES:
        served = await client.get(f"/static/fingerprint/{source.name}")
        assert served.status_code == 200, source.name
        assert served.headers["content-type"].startswith("text/javascript")
        assert served.content == source.read_bytes()


RUNNER = """
const ort = await import(process.argv[2]);
const before = { paths: ort.env.wasm.wasmPaths, threads: ort.env.wasm.numThreads };
const fp = await import(process.argv[3]);
const after = { paths: ort.env.wasm.wasmPaths, threads: ort.env.wasm.numThreads };
const asset = {
  onnx_url: "/models/m/model.onnx?v=ab", onnx_sha256: "ab", onnx_integrity: "sha256-x",
  onnx_bytes: 3,
  local: {
    onnx_url: "/models/m/local.onnx", onnx_sha256: "cd", onnx_integrity: "sha256-y", onnx_bytes: 4,
  },
};
const wasmPaths = "https://gw.example/vendor/ort/";
const runtime = fp.createRuntime(ort, { wasmPaths, numThreads: 2 });
const configured = { paths: ort.env.wasm.wasmPaths, threads: ort.env.wasm.numThreads };
let refused = "";
try { fp.createRuntime({}); } catch (error) { refused = error.message; }
let unloaded = "";
try { await fp.Fingerprinter.load(asset); } catch (error) { unloaded = error.message; }
console.log(JSON.stringify({
  exports: Object.keys(fp).sort(), before, after, configured, refused, unloaded,
  tensor: runtime.tensor(new Float32Array(6), [1, 1, 2, 3]).dims,
  here: fp.modelFiles(asset),
  there: fp.modelFiles(asset, "https://gw.example/"),
}));
"""


@needs_node
def test_importing_the_module_in_node_leaves_onnxruntime_alone(tmp_path: Path) -> None:
    runner = tmp_path / "run.mjs"
    runner.write_text(RUNNER)
    ort = (DEFAULT_ORT_DIR / "ort.wasm.min.mjs").as_uri()
    done = subprocess.run(
        ["node", str(runner), ort, (MODULE / "index.js").as_uri()],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result = json.loads(done.stdout)
    assert {"createRuntime", "Fingerprinter", "RegionDescriber", "TURNS"} <= set(result["exports"])
    assert result["after"] == result["before"]  # nothing set on import
    assert result["configured"] == {"paths": "https://gw.example/vendor/ort/", "threads": 2}
    assert "onnxruntime-web module" in result["refused"]
    assert "needs a runtime" in result["unloaded"]
    assert result["tensor"] == [1, 1, 2, 3]
    assert result["here"]["fingerprint"]["url"] == "/models/m/model.onnx?v=ab"
    assert result["there"]["fingerprint"]["url"] == "https://gw.example/models/m/model.onnx?v=ab"
    assert result["there"]["local"] == {
        "url": "https://gw.example/models/m/local.onnx",
        "sha256": "cd",
        "integrity": "sha256-y",
        "bytes": 4,
    }


@pytest.mark.skipif(not api_types.GENERATOR.exists(), reason="needs `make install` (npm)")
def test_the_committed_api_types_are_what_the_app_describes() -> None:
    assert api_types.TYPES.read_text() == api_types.typescript(api_types.openapi_document()), (
        "run `make api-types` and commit the file"
    )
