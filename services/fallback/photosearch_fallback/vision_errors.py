"""Vision failures -> domain errors, and which of them another attempt may fix.

Messages say what happened and what to do; Google's own message is passed through
with the API key masked (Google does not echo keys, but nothing here relies on that)."""

from dataclasses import dataclass

from google.api_core import exceptions as google_errors

from photosearch.common import errors

KEY_REJECTED = "the Google Vision API key was rejected"
_KEY_INVALID_REASONS = {"API_KEY_INVALID", "API_KEY_NOT_FOUND", "API_KEY_EXPIRED"}
# google.rpc.Code values Vision may put in a per-image error of a 200 reply.
_RPC_INVALID_ARGUMENT, _RPC_PERMISSION_DENIED, _RPC_RESOURCE_EXHAUSTED = 3, 7, 8
_RPC_UNAUTHENTICATED, _RPC_UNAVAILABLE = 16, 14


@dataclass(frozen=True)
class Failure:
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


def masked(text: str, api_key: str, limit: int = 300) -> str:
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


def classify_http(exc: google_errors.GoogleAPICallError, api_key: str, where: str) -> Failure:
    status = int(exc.code) if isinstance(exc.code, int) else None
    detail = masked(_upstream_message(exc), api_key)
    reason = (exc.reason or "").upper()
    if status == 401 or reason in _KEY_INVALID_REASONS or "API KEY NOT VALID" in detail.upper():
        return Failure(
            errors.Unauthenticated(f"{KEY_REJECTED} ({detail}): set a valid key in the settings"),
            "key_rejected",
            False,
            status,
        )
    if status == 429 or "RATE_LIMIT" in reason or "QUOTA" in reason:
        return Failure(
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
        return Failure(
            errors.PermissionDenied(
                f"{KEY_REJECTED} for this request ({detail}): check that the key is valid, "
                "that the Cloud Vision API is enabled for its project and billing is on"
            ),
            "forbidden",
            False,
            status,
        )
    if status is not None and status >= 500:
        return Failure(
            errors.Unavailable(
                f"Google Vision is failing (HTTP {status}: {detail}); try again later"
            ),
            "upstream_error",
            True,
            status,
            _retry_after(exc),
        )
    if status == 400:
        return Failure(
            errors.InvalidArgument(f"Google Vision refused the photo ({detail})"),
            "refused",
            False,
            status,
        )
    return Failure(
        errors.Unavailable(
            f"Google Vision at {where} answered HTTP {status} ({detail}); "
            "check FALLBACK_VISION_ENDPOINT"
        ),
        "unexpected_status",
        False,
        status,
    )


def classify_rejection(exc: VisionRejected, api_key: str) -> Failure:
    detail = masked(exc.message, api_key)
    if exc.code in (_RPC_UNAUTHENTICATED, _RPC_PERMISSION_DENIED):
        error: errors.DomainError = errors.PermissionDenied(f"{KEY_REJECTED} ({detail})")
        return Failure(error, "key_rejected", False)
    if exc.code == _RPC_RESOURCE_EXHAUSTED:
        error = errors.ResourceExhausted(f"the Google Vision quota is used up ({detail})")
        return Failure(error, "quota", True)
    if exc.code == _RPC_UNAVAILABLE:
        error = errors.Unavailable(f"Google Vision is failing ({detail}); try again later")
        return Failure(error, "upstream_error", True)
    if exc.code == _RPC_INVALID_ARGUMENT:
        error = errors.InvalidArgument(f"Google Vision could not use the photo ({detail})")
        return Failure(error, "refused", False)
    error = errors.Unavailable(f"Google Vision could not process the photo ({detail})")
    return Failure(error, "upstream_error", False)
