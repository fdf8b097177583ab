"""ASGI middleware: request ids, security headers, metrics and one log line
per request; body size limits enforced while the body streams in."""

import json
import re
import time
from typing import Any

import structlog
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from photosearch.common.context import bind_request_id
from photosearch.common.logging import get_logger
from photosearch_gateway.metrics import Metrics

log = get_logger("photosearch_gateway.http")

_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_QUIET = ("/healthz", "/readyz", "/metrics", "/static/", "/vendor/", "/models/")
# Cross-origin isolation lets onnxruntime-web use threads (SharedArrayBuffer).
SECURITY_HEADERS = [
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-embedder-policy", b"require-corp"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; "
        b"worker-src 'self' blob:; img-src 'self' blob: data:; style-src 'self'; "
        b"connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
    ),
]
# What another origin's page may embed when CORS is on (GATEWAY_CORS_ORIGINS): thumbnails
# and photos, model files and the wasm runtime. Its cross-origin-isolated page loads them
# only with this policy; everything else stays same-origin.
SHAREABLE_PATHS = ("/api/v1/images/", "/models/", "/vendor/ort/")
CROSS_ORIGIN_HEADERS = [
    (k, b"cross-origin") if k == b"cross-origin-resource-policy" else (k, v)
    for k, v in SECURITY_HEADERS
]


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value).decode("latin-1")
    return None


async def _send_json(send: Send, status: int, body: dict[str, Any]) -> None:
    payload = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(payload))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


def _error(code: str, message: str, request_id: str | None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "request_id": request_id}}


class RequestContext:
    """Outermost layer: everything a request carries and leaves behind."""

    def __init__(self, app: ASGIApp, metrics: Metrics, share_resources: bool = False) -> None:
        self.app = app
        self.metrics = metrics
        self.share_resources = share_resources

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        given = _header(scope, b"x-request-id")
        structlog.contextvars.clear_contextvars()
        request_id = bind_request_id(given if given and _VALID_REQUEST_ID.match(given) else None)
        status = 500
        response_started = False
        shared = self.share_resources and scope["path"].startswith(SHAREABLE_PATHS)
        security = CROSS_ORIGIN_HEADERS if shared else SECURITY_HEADERS

        async def send_with_headers(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                headers.extend(security)
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            log.exception("request.unhandled_error")
            if not response_started:
                await _send_json(
                    send_with_headers,
                    500,
                    _error("internal", f"internal error (request id {request_id})", request_id),
                )
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            elapsed = time.perf_counter() - started
            self.metrics.observe_http(scope["method"], route, status, elapsed)
            quiet = scope["path"].startswith(_QUIET) and status < 400
            (log.debug if quiet else log.info)(
                "http",
                method=scope["method"],
                route=route,
                status=status,
                duration_ms=round(elapsed * 1000, 2),
            )


class BodyLimit:
    """Refuses bodies over the limit of their route (413), whether or not they declare a length."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        json_bytes: int,
        upload_bytes: int,
        upload_paths: re.Pattern[str],
        search_bytes: int,
        search_path: str,
    ) -> None:
        self.app = app
        self.json_bytes = json_bytes
        # Multipart framing and form fields on top of the photo itself.
        self.upload_bytes = upload_bytes + 64 * 1024
        self.upload_paths = upload_paths
        # The search body carries local descriptors beside the fingerprint.
        self.search_bytes = search_bytes
        self.search_path = search_path

    def limit(self, path: str) -> int:
        if self.upload_paths.match(path):
            return self.upload_bytes
        return self.search_bytes if path == self.search_path else self.json_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit(scope["path"])
        too_large = f"the request body is over this route's limit of {limit} bytes"
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            rid = structlog.contextvars.get_contextvars().get("request_id")
            await _send_json(send, 413, _error("too_large", too_large, rid))
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # FastAPI lets HTTPException through its body parsing; the handler answers.
                    raise HTTPException(413, too_large)
            return message

        await self.app(scope, counting_receive, send)
