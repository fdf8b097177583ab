"""The page's own sign-in with the identity provider: the authorization code flow with
PKCE, the page's half in static/js/contributor.js. The page sends the browser to the
provider's authorization endpoint (found in its discovery document), and hands the code
it comes back with to the gateway, which redeems it at the token endpoint: the page never
calls the provider itself, so its content security policy stays same-origin and the
provider needs no CORS."""

from dataclasses import dataclass

import httpx

from photosearch_gateway.errors import ApiError
from photosearch_gateway.oidc import KeysUnavailable, TokenRejected
from photosearch_gateway.state import Gateway


@dataclass(frozen=True)
class SignIn:
    authorization_endpoint: str
    client_id: str
    scope: str


@dataclass(frozen=True)
class SignedIn:
    access_token: str
    expires_in: int
    name: str
    roles: list[str]


def _endpoint(document: dict[str, object], name: str) -> str:
    url = document.get(name)
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        raise ValueError(f"the discovery document has no {name}")
    return url


async def sign_in(gw: Gateway) -> SignIn | None:
    """What the page needs to start a sign-in; None when it is not set up or the
    provider cannot be reached now (the page then offers the pasted token only)."""
    if gw.oidc is None or not gw.settings.oidc_client_id:
        return None
    try:
        document = await gw.oidc.discovery(fail_fast=True)
        endpoint = _endpoint(document, "authorization_endpoint")
    except (httpx.HTTPError, ValueError):
        return None
    return SignIn(endpoint, gw.settings.oidc_client_id, gw.settings.oidc_scope)


async def redeem(gw: Gateway, code: str, code_verifier: str, redirect_uri: str) -> SignedIn:
    """The access token for an authorization code, checked like any bearer token."""
    if gw.oidc is None or not gw.settings.oidc_client_id:
        raise ApiError(409, "sign_in_disabled", "this gateway has no sign-in: paste a token")
    try:
        token_endpoint = _endpoint(await gw.oidc.discovery(), "token_endpoint")
        reply = await gw.oidc.http.post(
            token_endpoint,
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri,
                "client_id": gw.settings.oidc_client_id,
                "code_verifier": code_verifier,
            },
            headers={"Accept": "application/json"},
        )
    except (httpx.HTTPError, ValueError) as exc:
        raise ApiError(
            503,
            "unavailable",
            f"the identity provider could not be reached ({exc}); try again",
            headers={"Retry-After": str(gw.settings.retry_after_seconds)},
        ) from exc
    body = (
        reply.json() if reply.headers.get("content-type", "").startswith("application/json") else {}
    )
    if reply.status_code != 200 or not isinstance(body.get("access_token"), str):
        why = body.get("error_description") or body.get("error") or f"HTTP {reply.status_code}"
        raise ApiError(401, "unauthenticated", f"the identity provider refused the sign-in: {why}")
    token = body["access_token"]
    try:
        claims = await gw.oidc.verify(token)
    except TokenRejected as exc:
        raise ApiError(401, "unauthenticated", f"the provider's token: {exc}") from exc
    except KeysUnavailable as exc:
        raise ApiError(503, "unavailable", f"the provider's keys: {exc}") from exc
    expires = body.get("expires_in")
    return SignedIn(
        token,
        int(expires) if isinstance(expires, int | float) else 0,
        claims.name,
        sorted(claims.roles),
    )
