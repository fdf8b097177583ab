"""Bearer tokens (compared in constant time) and the per-client rate limits."""

import hmac
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from photosearch_gateway.errors import ApiError
from photosearch_gateway.state import Gateway, gateway

admin_bearer = HTTPBearer(
    scheme_name="AdminToken", description="GATEWAY_ADMIN_TOKEN", auto_error=False
)
user_bearer = HTTPBearer(
    scheme_name="UserToken",
    description="GATEWAY_USER_TOKEN (when set) or the admin token",
    auto_error=False,
)
Credentials = HTTPAuthorizationCredentials | None
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def _matches(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def require_admin(
    gw: Annotated[Gateway, Depends(gateway)],
    credentials: Annotated[Credentials, Depends(admin_bearer)],
) -> None:
    expected = gw.settings.admin_token.get_secret_value()
    if not expected:
        raise ApiError(
            503, "admin_disabled", "the admin API is off: set GATEWAY_ADMIN_TOKEN to use it"
        )
    if credentials is None:
        raise ApiError(
            401,
            "unauthenticated",
            "send the admin token as 'Authorization: Bearer <token>'",
            headers=_CHALLENGE,
        )
    if not _matches(credentials.credentials, expected):
        raise ApiError(401, "unauthenticated", "the admin token is wrong", headers=_CHALLENGE)


def require_user(
    gw: Annotated[Gateway, Depends(gateway)],
    credentials: Annotated[Credentials, Depends(user_bearer)],
) -> None:
    """Open unless GATEWAY_USER_TOKEN is set; the admin token is always accepted."""
    expected = gw.settings.user_token.get_secret_value()
    if not expected:
        return
    admin = gw.settings.admin_token.get_secret_value()
    given = credentials.credentials if credentials else ""
    if given and (_matches(given, expected) or (admin and _matches(given, admin))):
        return
    raise ApiError(401, "unauthenticated", "this gateway needs a user token", headers=_CHALLENGE)


def client_id(request: Request, gw: Gateway) -> str:
    """Who a rate limit counts against: the peer address, or the forwarded one from a proxy."""
    peer = request.client.host if request.client else "unknown"
    forwarded = request.headers.get("x-forwarded-for")
    if forwarded and peer in gw.trusted_proxies:
        return forwarded.split(",")[0].strip() or peer
    return peer


def _limit(name: str) -> Any:
    def check(request: Request, gw: Annotated[Gateway, Depends(gateway)]) -> None:
        limiter = gw.limiters[name]
        wait = limiter.acquire(client_id(request, gw))
        if wait > 0:
            gw.metrics.rate_limited.labels(name).inc()
            raise ApiError(
                429,
                "rate_limited",
                f"too many {name} requests from this client; retry in "
                f"{limiter.retry_after(wait)} s",
                headers={"Retry-After": limiter.retry_after(wait)},
            )

    return Depends(check)


search_rate_limit = _limit("search")
fallback_rate_limit = _limit("fallback")
