"""Another web app, on an origin of its own, built the way an adopter would: it serves
@photosearch/fingerprint and onnxruntime-web's files under its own paths (as an npm install
would copy them), its page is cross-origin isolated, and it calls the gateway through CORS."""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from photosearch_gateway.config import DEFAULT_ORT_DIR
from photosearch_gateway.routes.assets import STATIC_DIR

MODULE_DIR = STATIC_DIR / "fingerprint"
# URL prefix -> folder; nothing else is served.
FOLDERS = {"/lib/fingerprint/": MODULE_DIR, "/lib/onnxruntime-web/": DEFAULT_ORT_DIR}
TYPES = {".js": "text/javascript", ".mjs": "text/javascript", ".wasm": "application/wasm"}
PAGE = b"""<!doctype html><html><head><title>another app</title><link rel="icon" href="data:,">
</head><body></body></html>"""
ISOLATED = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
}


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/":
            self._send(200, "text/html", PAGE)
            return
        for prefix, folder in FOLDERS.items():
            name = path.removeprefix(prefix)
            file = folder / name
            if path.startswith(prefix) and "/" not in name and file.is_file():
                self._send(200, TYPES.get(file.suffix, "text/plain"), file.read_bytes())
                return
        self._send(404, "text/plain", b"not found")

    def _send(self, status: int, media: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", media)
        self.send_header("Content-Length", str(len(body)))
        for key, value in ISOLATED.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass


@contextmanager
def other_app() -> Iterator[str]:
    """Serves the app on a free port; yields its origin."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
