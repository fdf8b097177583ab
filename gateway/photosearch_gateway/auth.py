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


async def require_admin(
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


def check_user(gw: Gateway, credentials: Credentials) -> None:
    """Open unless GATEWAY_USER_TOKEN is set; the admin token is always accepted."""
    expected = gw.settings.user_token.get_secret_value()
    if not expected:
        return
    admin = gw.settings.admin_token.get_secret_value()
    given = credentials.credentials if credentials else ""
    if given and (_matches(given, expected) or (admin and _matches(given, admin))):
        return
    raise ApiError(401, "unauthenticated", "this gateway needs a user token", headers=_CHALLENGE)


async def require_user(
    request: Request, credentials: Annotated[Credentials, Depends(user_bearer)]
) -> None:
    check_user(request.app.state.gateway, credentials)


def client_id(request: Request, gw: Gateway) -> str:
    """Who a rate limit counts against: the peer address or, behind trusted proxies, the
    nearest X-Forwarded-For hop that is not one of them. Proxies append to the header, so
    hops to the left of that one are whatever the client chose to send."""
    peer = request.client.host if request.client else "unknown"
    if not gw.is_trusted_proxy(peer):
        return peer
    hops = [hop.strip() for hop in request.headers.get("x-forwarded-for", "").split(",")]
    hops = [hop for hop in hops if hop]
    for hop in reversed(hops):
        if not gw.is_trusted_proxy(hop):
            return hop
    return hops[0] if hops else peer


def check_rate(request: Request, gw: Gateway, name: str) -> None:
    limiter = gw.limiters[name]
    wait = limiter.acquire(client_id(request, gw))
    if wait > 0:
        gw.metrics.rate_limited.labels(name).inc()
        retry = limiter.retry_after(wait)
        raise ApiError(
            429,
            "rate_limited",
            f"too many {name} requests from this client; retry in {retry} s",
            headers={"Retry-After": retry},
        )


def user_with_rate_limit(name: str) -> Any:
    """One dependency for the hot routes: the user token (when set), then the rate limit."""

    async def guard(
        request: Request, credentials: Annotated[Credentials, Depends(user_bearer)]
    ) -> None:
        gw: Gateway = request.app.state.gateway
        check_user(gw, credentials)
        check_rate(request, gw, name)

    return Depends(guard)


search_access = user_with_rate_limit("search")
fallback_access = user_with_rate_limit("fallback")
