"""Google Cloud Vision web detection through the official client (REST transport).

The client is synchronous, so each call runs in a small thread pool; waiting and
backoff happen on the event loop. Retries: UNAVAILABLE / 5xx, 429, connection errors
and timeouts, with exponential backoff and jitter, within one overall deadline.
Every failure leaves as a domain error whose message a person can act on; upstream
messages are passed through with the API key masked (Google does not echo keys, but
nothing here relies on that)."""

import asyncio
import contextvars
import logging
import random
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import requests
from google.api_core import exceptions as google_errors
from google.auth import exceptions as auth_errors
from google.cloud import vision

from photosearch.common import errors
from photosearch.common.logging import get_logger

log = get_logger(__name__)

# At DEBUG these loggers write whole request bodies, i.e. the photo: never let them.
for _name in ("google.cloud.vision_v1", "google.auth.transport.requests", "google.api_core"):
    logging.getLogger(_name).setLevel(logging.INFO)

KEY_REJECTED = "the Google Vision API key was rejected"
_KEY_INVALID_REASONS = {"API_KEY_INVALID", "API_KEY_NOT_FOUND", "API_KEY_EXPIRED"}
# google.rpc.Code values Vision may put in a per-image error of a 200 reply.
_RPC_INVALID_ARGUMENT, _RPC_PERMISSION_DENIED, _RPC_RESOURCE_EXHAUSTED = 3, 7, 8
_RPC_UNAUTHENTICATED, _RPC_UNAVAILABLE = 16, 14


@dataclass(frozen=True)
class VisionOptions:
    endpoint: str  # empty = Google's
    deadline_seconds: float
    attempt_timeout_seconds: float
    max_attempts: int
    backoff_seconds: float
    backoff_max_seconds: float
    concurrency: int


@dataclass(frozen=True)
class _Failure:
    """One failed attempt: what to tell the caller, and whether another attempt may help."""

    error: errors.DomainError
    outcome: str  # short word for logs and metrics
    transient: bool
    http_status: int | None = None
    retry_after: float | None = None


class VisionRejected(Exception):
    """Raised in the worker thread for a per-image error inside an HTTP 200 reply."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _masked(text: str, api_key: str, limit: int = 300) -> str:
    if api_key:
        text = text.replace(api_key, "[redacted]")
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _retry_after(exc: google_errors.GoogleAPICallError) -> float | None:
    response = exc.response
    value = getattr(response, "headers", {}).get("Retry-After") if response is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:  # an HTTP date: ignore, backoff applies
        return None


def _upstream_message(exc: google_errors.GoogleAPICallError) -> str:
    """Google's own message, without the client's "POST <url>: " prefix."""
    message = exc.message or ""
    method, _, rest = message.partition(" ")
    if method.isupper() and rest.startswith(("http://", "https://")) and ": " in rest:
        return rest.split(": ", 1)[1]
    return message


def _classify_http(exc: google_errors.GoogleAPICallError, api_key: str, where: str) -> _Failure:
    status = int(exc.code) if isinstance(exc.code, int) else None
    detail = _masked(_upstream_message(exc), api_key)
    reason = (exc.reason or "").upper()
    if status == 401 or reason in _KEY_INVALID_REASONS or "API KEY NOT VALID" in detail.upper():
        return _Failure(
            errors.Unauthenticated(f"{KEY_REJECTED} ({detail}): set a valid key in the settings"),
            "key_rejected",
            False,
            status,
        )
    if status == 429 or "RATE_LIMIT" in reason or "QUOTA" in reason:
        return _Failure(
            errors.ResourceExhausted(
                f"the Google Vision quota is used up ({detail}); try again later "
                "or raise the quota of the key's project"
            ),
            "quota",
            True,
            status,
            _retry_after(exc),
        )
    if status == 403:
        return _Failure(
            errors.PermissionDenied(
                f"{KEY_REJECTED} for this request ({detail}): check that the key is valid, "
                "that the Cloud Vision API is enabled for its project and billing is on"
            ),
            "forbidden",
            False,
            status,
        )
    if status is not None and status >= 500:
        return _Failure(
            errors.Unavailable(
                f"Google Vision is failing (HTTP {status}: {detail}); try again later"
            ),
            "upstream_error",
            True,
            status,
            _retry_after(exc),
        )
    if status == 400:
        return _Failure(
            errors.InvalidArgument(f"Google Vision refused the photo ({detail})"),
            "refused",
            False,
            status,
        )
    return _Failure(
        errors.Unavailable(
            f"Google Vision at {where} answered HTTP {status} ({detail}); "
            "check FALLBACK_VISION_ENDPOINT"
        ),
        "unexpected_status",
        False,
        status,
    )


def _classify_rejection(exc: VisionRejected, api_key: str) -> _Failure:
    detail = _masked(exc.message, api_key)
    if exc.code in (_RPC_UNAUTHENTICATED, _RPC_PERMISSION_DENIED):
        error: errors.DomainError = errors.PermissionDenied(f"{KEY_REJECTED} ({detail})")
        return _Failure(error, "key_rejected", False)
    if exc.code == _RPC_RESOURCE_EXHAUSTED:
        error = errors.ResourceExhausted(f"the Google Vision quota is used up ({detail})")
        return _Failure(error, "quota", True)
    if exc.code == _RPC_UNAVAILABLE:
        error = errors.Unavailable(f"Google Vision is failing ({detail}); try again later")
        return _Failure(error, "upstream_error", True)
    if exc.code == _RPC_INVALID_ARGUMENT:
        error = errors.InvalidArgument(f"Google Vision could not use the photo ({detail})")
        return _Failure(error, "refused", False)
    error = errors.Unavailable(f"Google Vision could not process the photo ({detail})")
    return _Failure(error, "upstream_error", False)


class VisionWebDetector:
    """`detect()` = one web-detection request with retries; returns `vision.WebDetection`."""

    def __init__(self, options: VisionOptions) -> None:
        self._options = options
        self._where = options.endpoint or "vision.googleapis.com"
        self._executor = ThreadPoolExecutor(options.concurrency, thread_name_prefix="vision")
        self._client_lock = threading.Lock()
        self._client: tuple[str, Any] | None = None

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _client_for(self, api_key: str) -> Any:
        """One client per key: a changed key gets a fresh client (and session)."""
        with self._client_lock:
            if self._client is None or self._client[0] != api_key:
                options: dict[str, str] = {"api_key": api_key}
                if self._options.endpoint:
                    options["api_endpoint"] = self._options.endpoint
                client = vision.ImageAnnotatorClient(client_options=options, transport="rest")
                self._client = (api_key, client)
            return self._client[1]

    def _annotate(self, jpeg: bytes, api_key: str, max_results: int, timeout: float) -> Any:
        """Runs in a worker thread."""
        request = vision.AnnotateImageRequest(
            image=vision.Image(content=jpeg),
            features=[
                vision.Feature(type_=vision.Feature.Type.WEB_DETECTION, max_results=max_results)
            ],
        )
        reply = self._client_for(api_key).batch_annotate_images(
            requests=[request], retry=None, timeout=timeout
        )
        if not reply.responses:
            return vision.WebDetection()
        answer = reply.responses[0]
        if answer.error.code:
            raise VisionRejected(answer.error.code, answer.error.message)
        return answer.web_detection

    def _classify(self, exc: BaseException, api_key: str, timeout: float) -> _Failure:
        if isinstance(exc, google_errors.GoogleAPICallError):
            return _classify_http(exc, api_key, self._where)
        if isinstance(exc, VisionRejected):
            return _classify_rejection(exc, api_key)
        if isinstance(exc, requests.Timeout | TimeoutError):
            return _Failure(
                errors.DeadlineExceeded(
                    f"Google Vision did not answer within {timeout:.1f} s; try again later"
                ),
                "timeout",
                True,
            )
        if isinstance(exc, requests.ConnectionError | auth_errors.TransportError):
            return _Failure(
                errors.Unavailable(f"cannot reach Google Vision at {self._where}; try again later"),
                "unreachable",
                True,
            )
        raise exc

    def _backoff(self, attempt: int, failure: _Failure) -> float:
        ceiling = min(
            self._options.backoff_max_seconds, self._options.backoff_seconds * 2.0 ** (attempt - 1)
        )
        delay = ceiling / 2 + random.uniform(0, ceiling / 2)
        if failure.retry_after is not None:
            delay = max(delay, min(failure.retry_after, self._options.backoff_max_seconds))
        return delay

    async def detect(
        self, jpeg: bytes, api_key: str, max_results: int, deadline_seconds: float | None = None
    ) -> tuple[Any, int]:
        """(web detection, attempts). `deadline_seconds` (the caller's remaining time)
        shortens the configured deadline."""
        budget = self._options.deadline_seconds
        if deadline_seconds is not None:
            budget = min(budget, deadline_seconds)
        loop = asyncio.get_running_loop()
        ends = loop.time() + budget
        attempt = 0
        while True:
            attempt += 1
            timeout = min(self._options.attempt_timeout_seconds, max(ends - loop.time(), 0.05))
            context = contextvars.copy_context()  # keeps the request id in worker threads
            call = loop.run_in_executor(
                self._executor, context.run, self._annotate, jpeg, api_key, max_results, timeout
            )
            try:
                # requests' timeout is per socket read; this bounds the whole attempt.
                return await asyncio.wait_for(call, timeout + 1.0), attempt
            except Exception as exc:
                failure = self._classify(exc, api_key, timeout)
            delay = self._backoff(attempt, failure)
            retry = (
                failure.transient
                and attempt < self._options.max_attempts
                and loop.time() + delay + 0.05 < ends
            )
            log.warning(
                "vision.attempt_failed",
                attempt=attempt,
                outcome=failure.outcome,
                http_status=failure.http_status,
                retry_in_s=round(delay, 2) if retry else None,
            )
            if not retry:
                raise failure.error
            await asyncio.sleep(delay)
