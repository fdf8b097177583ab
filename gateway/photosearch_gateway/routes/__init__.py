"""HTTP routes: each turns a request into one call on a client or a use case."""

from typing import Annotated, Any

from fastapi import Path

from photosearch_gateway.errors import ErrorBody

# An item's, image's or job's id in a path: ids are UUIDs, nothing else gets through.
PathId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]

_DESCRIPTIONS = {
    400: "Invalid request (the message names the field)",
    401: "Missing or wrong token",
    403: "The token is good but may not do this (the message says what would)",
    404: "Not found",
    409: "Not possible in the current state (the message says why)",
    413: "Request body too large",
    415: "Wrong content type",
    429: "Rate limited (see Retry-After)",
    502: "A service behind the gateway failed",
    503: "A service behind the gateway is down or slow (see Retry-After)",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI documentation of the error answers a route can give (always 400 and 503)."""
    return {
        code: {"model": ErrorBody, "description": _DESCRIPTIONS[code]}
        for code in sorted({400, 502, 503, *codes})
    }
