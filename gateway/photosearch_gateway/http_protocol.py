"""uvicorn's httptools protocol with a bound on the request head (request line and
headers). httptools itself reads headers of any size; h11 bounds them but spends 2-3x
the CPU per request. A head over the limit gets a 431 in the API's JSON error
shape as soon as the limit is passed, not after the whole head has been read."""

import asyncio
import json
from typing import Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from photosearch.common.context import new_request_id
from photosearch.common.logging import get_logger
from photosearch_gateway.middleware import SECURITY_HEADERS

log = get_logger("photosearch_gateway.http")

# After the refusal, what the client still sends is read and dropped for this long, so
# it reads the answer instead of a connection reset (closing with unread data sends RST).
LINGER_SECONDS = 2.0


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    max_head_bytes = 64 * 1024

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._reading_head = True
        self._head_bytes = 0
        self._head_tail = b""  # the end of the last chunk: the blank line may straddle two
        self._refused = False
        self._linger: asyncio.TimerHandle | None = None

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._reading_head:
            budget = self.max_head_bytes - self._head_bytes
            if len(data) > budget and not _ends_head(self._head_tail + data[: max(budget, 0)]):
                self._refuse()
                return
            self._head_bytes += len(data)
            self._head_tail = data[-2:]
        super().data_received(data)
        if self._reading_head and self._head_bytes > self.max_head_bytes:
            self._refuse()  # the parser did not see the end we saw: over the limit after all

    def on_headers_complete(self) -> None:
        self._reading_head, self._head_bytes, self._head_tail = False, 0, b""
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._reading_head, self._head_bytes, self._head_tail = True, 0, b""

    def connection_lost(self, exc: Exception | None) -> None:
        if self._linger is not None:
            self._linger.cancel()
        super().connection_lost(exc)

    def _refuse(self) -> None:
        self._refused = True
        self._unset_keepalive_if_required()
        if self.cycle is not None and not self.cycle.response_complete:
            self.transport.close()  # a pipelined request is still answering: no room for ours
            return
        request_id = new_request_id()
        message = f"the request headers are over the limit of {self.max_head_bytes} bytes"
        log.warning(
            "http.headers_too_large", status=431, limit=self.max_head_bytes, request_id=request_id
        )
        body = json.dumps(
            {"error": {"code": "headers_too_large", "message": message, "request_id": request_id}}
        ).encode()
        headers = [
            *self.server_state.default_headers,
            (b"content-type", b"application/json"),
            (b"content-length", b"%d" % len(body)),
            (b"connection", b"close"),
            (b"x-request-id", request_id.encode()),
            *SECURITY_HEADERS,
        ]
        head = b"".join(name + b": " + value + b"\r\n" for name, value in headers)
        self.transport.write(STATUS_LINE[431] + head + b"\r\n" + body)
        if self.transport.can_write_eof():
            self.transport.write_eof()  # the client reads the answer and closes its side
            self._linger = self.loop.call_later(LINGER_SECONDS, self.transport.close)
        else:
            self.transport.close()


def _ends_head(data: bytes) -> bool:
    """Whether `data` holds the blank line that ends a head (llhttp accepts bare LFs)."""
    return b"\n\r\n" in data or b"\n\n" in data


def bounded_httptools(max_head_bytes: int) -> type[asyncio.Protocol]:
    """The protocol class for uvicorn.run(http=...), refusing heads over `max_head_bytes`."""
    return type(
        "BoundedHttpToolsProtocol", (BoundedHttpToolsProtocol,), {"max_head_bytes": max_head_bytes}
    )
