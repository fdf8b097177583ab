"""The web UI, the model files the page runs and onnxruntime-web's files."""

import json
from pathlib import Path as FsPath
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import FileResponse

from photosearch.common.model_files import MANIFEST, PREPROCESS
from photosearch_gateway.errors import ApiError
from photosearch_gateway.state import Gateway, gateway

STATIC_DIR = FsPath(__file__).resolve().parent.parent / "static"
# The builds the page loads (static/js/app.js hands one to static/fingerprint/): wasm, and
# WebGPU (with its own wasm file) where the browser has a GPU adapter; nothing else is served.
ORT_FILES = {
    "ort.wasm.min.mjs": "text/javascript",
    "ort-wasm-simd-threaded.mjs": "text/javascript",
    "ort-wasm-simd-threaded.wasm": "application/wasm",
    "ort.webgpu.min.mjs": "text/javascript",
    "ort-wasm-simd-threaded.asyncify.mjs": "text/javascript",
    "ort-wasm-simd-threaded.asyncify.wasm": "application/wasm",
}
# Swagger UI's files the /docs page loads.
SWAGGER_FILES = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
}
# i18next, as one ES module.
I18NEXT_FILES = {"i18next.js": "text/javascript"}
_STATIC_TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
    ".webmanifest": "application/manifest+json",
    ".json": "application/json",
}
# Pages and their scripts change with a release: revalidate each time (cheap 304s).
REVALIDATE = "no-cache"
IMMUTABLE = "public, max-age=31536000, immutable"

router = APIRouter(include_in_schema=False)
GatewayDep = Annotated[Gateway, Depends(gateway)]


def _not_found(what: str) -> ApiError:
    return ApiError(404, "not_found", f"no such {what}")


@router.get("/")
async def index_page() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": REVALIDATE})


@router.get("/admin")
async def admin_page() -> FileResponse:
    return FileResponse(STATIC_DIR / "admin.html", headers={"Cache-Control": REVALIDATE})


@router.get("/docs")
async def api_docs_page() -> FileResponse:
    """Swagger UI over /openapi.json, every file served from here (static/js/docs.js)."""
    return FileResponse(STATIC_DIR / "docs.html", headers={"Cache-Control": REVALIDATE})


def _npm_file(
    folder: FsPath, name: str, files: dict[str, str], package: str, code: str
) -> FileResponse:
    """One of the listed files of an npm package the gateway serves (nothing else of it)."""
    if name not in files:
        raise _not_found("file")
    path = folder / name
    if not path.is_file():
        raise ApiError(503, code, f"{package} is not installed: run `make install`")
    return FileResponse(path, media_type=files[name], headers={"Cache-Control": REVALIDATE})


@router.get("/vendor/swagger/{name}")
async def swagger_file(name: str, gw: GatewayDep) -> FileResponse:
    return _npm_file(
        gw.settings.swagger_dir, name, SWAGGER_FILES, "swagger-ui-dist", "swagger_missing"
    )


@router.get("/static/{name:path}")
async def static_file(name: Annotated[str, Path(max_length=200)]) -> FileResponse:
    path = (STATIC_DIR / name).resolve()
    if not path.is_relative_to(STATIC_DIR) or not path.is_file() or path.suffix == ".html":
        raise _not_found("file")
    media = _STATIC_TYPES.get(path.suffix)
    return FileResponse(path, media_type=media, headers={"Cache-Control": REVALIDATE})


@router.get("/vendor/i18next/{name}")
async def i18next_file(name: str, gw: GatewayDep) -> FileResponse:
    return _npm_file(gw.settings.i18next_dir, name, I18NEXT_FILES, "i18next", "i18next_missing")


@router.get("/vendor/ort/{name}")
async def ort_file(name: str, gw: GatewayDep) -> FileResponse:
    return _npm_file(gw.settings.ort_dir, name, ORT_FILES, "onnxruntime-web", "ort_missing")


@router.get("/models/{key}/{name}")
async def model_file(
    key: str, name: str, gw: GatewayDep, v: Annotated[str, Query(max_length=64)] = ""
) -> FileResponse:
    """A file of an exported model, only if its manifest lists it (no other path is served)."""
    directory = (gw.settings.model_dir / key).resolve()
    if directory.parent != gw.settings.model_dir.resolve() or not (directory / MANIFEST).exists():
        raise _not_found("model")
    manifest = json.loads((directory / MANIFEST).read_text())
    files = manifest.get("files", {})
    if name != PREPROCESS and name not in files:
        raise _not_found("model file")
    path = directory / name
    if not path.is_file():
        raise _not_found("model file")
    media = "application/json" if name.endswith(".json") else "application/octet-stream"
    # Cached forever only under the URL that names its digest (a re-export changes the URL).
    versioned = bool(v) and str(files.get(name, "")).startswith(v)
    headers = {"Cache-Control": IMMUTABLE if versioned else REVALIDATE}
    return FileResponse(path, media_type=media, headers=headers)
