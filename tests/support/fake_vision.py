"""A local stand-in for Google Cloud Vision's REST API (`POST /v1/images:annotate`).

It speaks the real wire format, so the real `google-cloud-vision` client (REST
transport, `client_options={"api_endpoint": fake.endpoint}`) can be pointed at it:

    with FakeVision(api_key="AIza-test") as fake:       # free port, own thread
        fake.enqueue(Reply.error(429), Reply.web_detection(RICH_WEB_DETECTION))
        ...                                              # call the code under test
        [first, second] = fake.requests                  # RecordedRequest objects
        assert second.api_key == "AIza-test" and second.max_results == 10

Replies are served from the queue in order, then `set_default(...)` (initially an
empty web detection) for every later request. `api_key`, when given, is checked the way
Google does: a request with another key (or none) gets HTTP 400 API_KEY_INVALID.
The fake never logs a request line, so keys and photos stay out of test output."""

import base64
import json
import threading
from collections import deque
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

ANNOTATE_PATH = "/v1/images:annotate"
WEB_DETECTION = 10  # google.cloud.vision.Feature.Type.WEB_DETECTION

_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}

# What Vision answers for a photo of a well-known figure (shape of a real reply,
# camelCase; titles carry HTML as Vision's do).
RICH_WEB_DETECTION: dict[str, Any] = {
    "webEntities": [
        {"entityId": "/m/0dl567", "score": 0.91, "description": "Boba Fett"},
        {"entityId": "/m/02vx4", "score": 1.23, "description": "Action Figure"},
        {"entityId": "/g/11bc5v9ks0", "score": 0.42},
        {"entityId": "/m/0h3y", "score": 0.38, "description": "Kenner"},
    ],
    "fullMatchingImages": [
        {"url": "https://images.example.com/boba-fett-1979.jpg"},
        {"url": "javascript:alert(1)"},
    ],
    "partialMatchingImages": [{"url": "https://cdn.example.org/figures/boba-crop.png"}],
    "pagesWithMatchingImages": [
        {
            "url": "https://collectors.example.net/kenner/boba-fett",
            "pageTitle": "<b>Boba Fett</b> 1979 Kenner &amp; Palitoy &ndash; figure guide",
            "fullMatchingImages": [{"url": "https://collectors.example.net/img/boba.jpg"}],
        },
        {
            "url": "https://shop.example.com/item/42",
            "pageTitle": "Vintage <b>Star Wars</b> figure",
            "partialMatchingImages": [{"url": "https://shop.example.com/img/42.jpg"}],
        },
    ],
    "visuallySimilarImages": [
        {"url": "https://images.example.com/similar-1.jpg"},
        {"url": "https://images.example.com/similar-2.jpg"},
    ],
    "bestGuessLabels": [{"label": "boba fett kenner 1979", "languageCode": "en"}],
}


@dataclass(frozen=True)
class Reply:
    """One canned answer. Build with the class methods."""

    status: int = 200
    body: dict[str, Any] | None = None
    delay: float = 0.0  # seconds to wait before answering (timeouts)
    hang_up: bool = False  # close the connection without answering
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def web_detection(cls, web: dict[str, Any]) -> "Reply":
        """HTTP 200 with this `webDetection` (camelCase JSON, as Vision sends it)."""
        return cls(body={"responses": [{"webDetection": web}]})

    @classmethod
    def empty(cls) -> "Reply":
        """HTTP 200 with nothing found: what Vision says for an unknown object."""
        return cls(body={"responses": [{}]})

    @classmethod
    def error(
        cls,
        status: int,
        message: str = "",
        *,
        reason: str = "",
        retry_after: float | None = None,
    ) -> "Reply":
        """Google's JSON error body for an HTTP status (with an ErrorInfo `reason` if given)."""
        error: dict[str, Any] = {
            "code": status,
            "message": message or HTTPStatus(status).phrase,
            "status": _STATUS_NAMES.get(status, "UNKNOWN"),
        }
        if reason:
            error["details"] = [
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": reason,
                    "domain": "googleapis.com",
                    "metadata": {"service": "vision.googleapis.com"},
                }
            ]
        headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
        return cls(status=status, body={"error": error}, headers=headers)

    @classmethod
    def key_invalid(cls) -> "Reply":
        """What Google answers for an unknown API key (HTTP 400, reason API_KEY_INVALID)."""
        message = "API key not valid. Please pass a valid API key."
        return cls.error(400, message, reason="API_KEY_INVALID")

    @classmethod
    def image_error(cls, code: int, message: str) -> "Reply":
        """HTTP 200 whose one response carries a google.rpc.Status (e.g. 3, "Bad image data.")."""
        return cls(body={"responses": [{"error": {"code": code, "message": message}}]})

    @classmethod
    def slow(cls, seconds: float, then: "Reply | None" = None) -> "Reply":
        """Answer `then` (default: empty) only after `seconds`: provokes client timeouts."""
        base = then or cls.empty()
        return cls(base.status, base.body, seconds, base.hang_up, base.headers)

    @classmethod
    def disconnect(cls) -> "Reply":
        """Close the connection without a response (a network failure for the client)."""
        return cls(hang_up=True)


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: dict[str, Any]

    @property
    def api_key(self) -> str | None:
        """The key as sent: the x-goog-api-key header or a ?key= parameter."""
        keys = self.query.get("key") or []
        return self.headers.get("x-goog-api-key") or (keys[0] if keys else None)

    @property
    def images(self) -> list[bytes]:
        """The decoded `image.content` of every request in the batch."""
        return [
            base64.b64decode(r["image"]["content"])
            for r in self.body.get("requests", [])
            if r.get("image", {}).get("content")
        ]

    @property
    def features(self) -> list[dict[str, Any]]:
        return [f for r in self.body.get("requests", []) for f in r.get("features", [])]

    @property
    def max_results(self) -> int | None:
        """maxResults of the WEB_DETECTION feature (None if not asked for)."""
        for feature in self.features:
            if feature.get("type") in (WEB_DETECTION, "WEB_DETECTION"):
                return int(feature.get("maxResults", 0))
        return None


class FakeVision:
    """Start with `start()` or `with FakeVision() as fake:`; stop with `stop()`."""

    def __init__(self, *, api_key: str | None = None, host: str = "127.0.0.1", port: int = 0):
        self.api_key = api_key
        self._address = (host, port)
        self._lock = threading.Lock()
        self._queue: deque[Reply] = deque()
        self._default = Reply.web_detection({})
        self._requests: list[RecordedRequest] = []
        self._arrived = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> "FakeVision":
        self._stopping.clear()
        server = ThreadingHTTPServer(self._address, _handler_for(self))
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, name="fake-vision", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # releases slow replies still waiting
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)
        self._server = self._thread = None

    def __enter__(self) -> "FakeVision":
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "start() first"
        return int(self._server.server_address[1])

    @property
    def endpoint(self) -> str:
        """What to pass as `api_endpoint` (FALLBACK_VISION_ENDPOINT)."""
        return f"http://127.0.0.1:{self.port}"

    # -- behaviour ---------------------------------------------------------------------
    def enqueue(self, *replies: Reply) -> None:
        """Serve these, one per request, before the default."""
        with self._lock:
            self._queue.extend(replies)

    def set_default(self, reply: Reply) -> None:
        """Serve this whenever the queue is empty."""
        with self._lock:
            self._default = reply

    def reset(self) -> None:
        """Empty queue, empty default reply, no recorded requests."""
        with self._lock:
            self._queue.clear()
            self._default = Reply.web_detection({})
            self._requests.clear()

    # -- inspection --------------------------------------------------------------------
    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def wait_for_requests(self, count: int, timeout: float = 10.0) -> list[RecordedRequest]:
        with self._arrived:
            if not self._arrived.wait_for(lambda: len(self._requests) >= count, timeout):
                raise TimeoutError(f"{len(self._requests)} of {count} requests after {timeout} s")
            return list(self._requests)

    # -- used by the handler -----------------------------------------------------------
    def _record(self, request: RecordedRequest) -> Reply:
        with self._arrived:
            self._requests.append(request)
            self._arrived.notify_all()
            if self.api_key is not None and request.api_key != self.api_key:
                return Reply.key_invalid()
            return self._queue.popleft() if self._queue else self._default

    def _wait(self, seconds: float) -> bool:
        """False when the fake is stopping."""
        return not self._stopping.wait(seconds)


def _handler_for(fake: FakeVision) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as Google's front end

        def log_message(self, format: str, *args: Any) -> None:
            pass  # request lines may carry ?key=

        def _send(self, reply: Reply) -> None:
            if reply.delay and not fake._wait(reply.delay):
                self.close_connection = True
                return
            if reply.hang_up:
                self.close_connection = True
                return
            payload = json.dumps(reply.body or {}).encode()
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json; charset=UTF-8")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client gave up waiting (a timeout test)

        def do_POST(self) -> None:
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            if url.path != ANNOTATE_PATH:
                self._send(Reply.error(404, f"no such method: POST {url.path}"))
                return
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                self._send(Reply.error(400, "Invalid JSON payload received."))
                return
            recorded = RecordedRequest(
                method="POST",
                path=url.path,
                query=parse_qs(url.query),
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
            )
            self._send(fake._record(recorded))

    return Handler
