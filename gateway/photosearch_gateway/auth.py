"""Who is calling (a static token compared in constant time, or an OIDC bearer token),
what that caller may do (read, write as a contributor, administer), and the per-client
rate limits."""

import hmac
from dataclasses import dataclass
from enum import IntEnum
from typing import Annotated, Any

import structlog
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from photosearch_gateway.errors import ApiError
from photosearch_gateway.oidc import KeysUnavailable, TokenRejected, looks_like_jwt
from photosearch_gateway.state import Gateway, gateway

admin_bearer = HTTPBearer(
    scheme_name="AdminToken",
    description="GATEWAY_ADMIN_TOKEN, or an OIDC token with GATEWAY_OIDC_ADMIN_ROLE",
    auto_error=False,
)
user_bearer = HTTPBearer(
    scheme_name="UserToken",
    description="GATEWAY_USER_TOKEN (when set), or any token that may write",
    auto_error=False,
)
contributor_bearer = HTTPBearer(
    scheme_name="ContributorToken",
    description=(
        "GATEWAY_CONTRIBUTOR_TOKEN, an OIDC token with GATEWAY_OIDC_CONTRIBUTOR_ROLE "
        "(or the admin role), or the admin token"
    ),
    auto_error=False,
)
Credentials = HTTPAuthorizationCredentials | None
_CHALLENGE = {"WWW-Authenticate": "Bearer"}
_INVALID_TOKEN = {"WWW-Authenticate": 'Bearer error="invalid_token"'}


class Role(IntEnum):
    READER = 0
    CONTRIBUTOR = 1
    ADMIN = 2


@dataclass(frozen=True)
class Caller:
    identity: str  # what the per-identity limit counts and the logs name
    role: Role
    name: str  # for people: the token's kind or the OIDC user name


ANONYMOUS = Caller("anonymous", Role.READER, "an anonymous caller")


def _matches(given: str, expected: str) -> bool:
    return bool(expected) and hmac.compare_digest(given.encode(), expected.encode())


async def identify(gw: Gateway, credentials: Credentials) -> Caller:
    """The caller a bearer token names; a token that names no one is refused (401)."""
    if credentials is None:
        return ANONYMOUS
    given, settings = credentials.credentials, gw.settings
    if _matches(given, settings.admin_token.get_secret_value()):
        return Caller("admin-token", Role.ADMIN, "the admin token")
    if _matches(given, settings.contributor_token.get_secret_value()):
        return Caller("contributor-token", Role.CONTRIBUTOR, "the contributor token")
    if _matches(given, settings.user_token.get_secret_value()):
        return Caller("user-token", Role.READER, "the user token")
    if gw.oidc is None or not looks_like_jwt(given):
        raise ApiError(401, "unauthenticated", "the token was not accepted", headers=_CHALLENGE)
    try:
        claims = await gw.oidc.verify(given)
    except TokenRejected as exc:
        raise ApiError(401, "unauthenticated", str(exc), headers=_INVALID_TOKEN) from exc
    except KeysUnavailable as exc:
        raise ApiError(
            503,
            "unavailable",
            f"the identity provider's signing keys could not be fetched ({exc}); try again",
            headers={"Retry-After": str(gw.settings.retry_after_seconds)},
        ) from exc
    role = Role.READER
    if settings.oidc_admin_role in claims.roles:
        role = Role.ADMIN
    elif settings.oidc_contributor_role in claims.roles:
        role = Role.CONTRIBUTOR
    return Caller(f"oidc:{claims.subject}", role, claims.name)


def _bind(request: Request, caller: Caller) -> None:
    request.state.caller = caller
    structlog.contextvars.bind_contextvars(caller=caller.identity)


def needs_review(gw: Gateway, caller: Caller) -> bool:
    """A contributor's writes wait for an admin's review; an admin's are approved at once."""
    return caller.role is not Role.ADMIN and gw.settings.review_contributions


def how_to_write(gw: Gateway) -> str:
    settings, ways = gw.settings, []
    if settings.contributor_token.get_secret_value():
        ways.append("the contributor token")
    if settings.oidc_issuer:
        ways.append(
            f"a token from {settings.oidc_issuer} with the role {settings.oidc_contributor_role!r}"
        )
    if not ways:
        return (
            "only admins write on this gateway (an operator can let contributors in with "
            "GATEWAY_CONTRIBUTOR_TOKEN or GATEWAY_OIDC_ISSUER)"
        )
    return "writing needs " + " or ".join(ways)


async def require_admin(
    request: Request,
    gw: Annotated[Gateway, Depends(gateway)],
    credentials: Annotated[Credentials, Depends(admin_bearer)],
) -> Caller:
    if not gw.settings.admin_token.get_secret_value() and gw.oidc is None:
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
    try:
        caller = await identify(gw, credentials)
    except ApiError as exc:
        if exc.status == 401 and not looks_like_jwt(credentials.credentials):
            exc.message = "the admin token is wrong"
        raise
    if caller.role is not Role.ADMIN:
        raise ApiError(403, "forbidden", f"{caller.name} may not use the admin API")
    _bind(request, caller)
    return caller


async def check_user(gw: Gateway, credentials: Credentials) -> None:
    """Open unless GATEWAY_USER_TOKEN is set; then any token that names a caller will do."""
    if not gw.settings.user_token.get_secret_value():
        return
    if credentials is None or await identify(gw, credentials) is ANONYMOUS:
        raise ApiError(
            401, "unauthenticated", "this gateway needs a user token", headers=_CHALLENGE
        )


async def require_contributor(
    request: Request,
    gw: Annotated[Gateway, Depends(gateway)],
    credentials: Annotated[Credentials, Depends(contributor_bearer)],
) -> Caller:
    """A caller who may write: admins, or contributors within their rate limits. Every
    other attempt counts against the address's limit, guesses at the token included."""
    try:
        caller = await identify(gw, credentials)
    except ApiError as exc:
        if exc.status == 401:
            check_rate(request, gw, "write_address")
        raise
    if caller.role is not Role.ADMIN:  # admins hold the system's key: not limited
        check_rate(request, gw, "write_address")
        if caller is ANONYMOUS:
            raise ApiError(401, "unauthenticated", how_to_write(gw), headers=_CHALLENGE)
        if caller.role < Role.CONTRIBUTOR:
            raise ApiError(403, "forbidden", f"{caller.name} may not write: {how_to_write(gw)}")
        check_rate(request, gw, "write", caller.identity)
    _bind(request, caller)
    return caller


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


_LIMIT_NAMES = {"write": "writes by this caller", "write_address": "writes from this address"}


def check_rate(request: Request, gw: Gateway, name: str, key: str | None = None) -> None:
    limiter = gw.limiters[name]
    wait = limiter.acquire(key or client_id(request, gw))
    if wait > 0:
        gw.metrics.rate_limited.labels(name).inc()
        retry = limiter.retry_after(wait)
        what = _LIMIT_NAMES.get(name, f"{name} requests from this client")
        raise ApiError(
            429,
            "rate_limited",
            f"too many {what}; retry in {retry} s",
            headers={"Retry-After": retry},
        )


def user_with_rate_limit(name: str) -> Any:
    """One dependency for the hot routes: the user token (when set), then the rate limit."""

    async def guard(
        request: Request, credentials: Annotated[Credentials, Depends(user_bearer)]
    ) -> None:
        gw: Gateway = request.app.state.gateway
        await check_user(gw, credentials)
        check_rate(request, gw, name)

    return Depends(guard)


search_access = user_with_rate_limit("search")
fallback_access = user_with_rate_limit("fallback")
