"""Google Cloud Vision web detection through the official client (REST transport).

The client is synchronous, so each call runs in a small thread pool; waiting and
backoff happen on the event loop. Retries: UNAVAILABLE / 5xx, 429, connection errors
and timeouts, with exponential backoff and jitter, within one overall deadline.
Every failure leaves as a domain error (see vision_errors)."""

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
from photosearch_fallback.vision_errors import (
    Failure,
    VisionRejected,
    classify_http,
    classify_rejection,
)

log = get_logger(__name__)

# At DEBUG these loggers write whole request bodies, i.e. the photo: never let them.
for _name in ("google.cloud.vision_v1", "google.auth.transport.requests", "google.api_core"):
    logging.getLogger(_name).setLevel(logging.INFO)


@dataclass(frozen=True)
class VisionOptions:
    endpoint: str  # empty = Google's
    deadline_seconds: float
    attempt_timeout_seconds: float
    max_attempts: int
    backoff_seconds: float
    backoff_max_seconds: float
    concurrency: int


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

    def _classify(self, exc: BaseException, api_key: str, timeout: float) -> Failure:
        if isinstance(exc, google_errors.GoogleAPICallError):
            return classify_http(exc, api_key, self._where)
        if isinstance(exc, VisionRejected):
            return classify_rejection(exc, api_key)
        if isinstance(exc, requests.Timeout | TimeoutError):
            return Failure(
                errors.DeadlineExceeded(
                    f"Google Vision did not answer within {timeout:.1f} s; try again later"
                ),
                "timeout",
                True,
            )
        if isinstance(exc, requests.ConnectionError | auth_errors.TransportError):
            return Failure(
                errors.Unavailable(f"cannot reach Google Vision at {self._where}; try again later"),
                "unreachable",
                True,
            )
        raise exc

    def _backoff(self, attempt: int, failure: Failure) -> float:
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
