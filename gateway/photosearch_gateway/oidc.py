"""OIDC bearer tokens: the issuer's signing keys fetched and cached, a token's signature,
issuer, audience and times checked (PyJWT), and the caller's roles read from its claims."""

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import httpx
import jwt

from photosearch.common.logging import get_logger

log = get_logger(__name__)
# An unknown key id may mean the issuer rotated its keys; refetch, but not on every
# request an attacker sends with a made-up kid.
MIN_REFETCH_SECONDS = 30.0
FETCH_TIMEOUT_SECONDS = 5.0
MAX_JWKS_BYTES = 512 * 1024


class TokenRejected(Exception):
    """The token is not one this gateway accepts; the message says why."""


class KeysUnavailable(Exception):
    """The issuer's keys could not be fetched (and none are cached)."""


@dataclass(frozen=True)
class OidcConfig:
    issuer: str
    audience: str
    jwks_url: str  # empty: from the issuer's discovery document
    roles_claim: str
    algorithms: list[str]
    cache_seconds: float
    leeway_seconds: float


@dataclass(frozen=True)
class Claims:
    subject: str
    roles: frozenset[str]
    name: str  # for logs and the moderation record: preferred_username, email or sub


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2


def roles_from(claims: dict[str, Any], path: str) -> frozenset[str]:
    value: Any = claims
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if isinstance(value, str):
        return frozenset(value.split())
    if isinstance(value, list):
        return frozenset(str(v) for v in value)
    return frozenset()


class OidcVerifier:
    def __init__(self, config: OidcConfig, http: httpx.AsyncClient | None = None) -> None:
        self.config = config
        self._http = http or httpx.AsyncClient(
            timeout=FETCH_TIMEOUT_SECONDS, follow_redirects=False
        )
        self._keys: jwt.PyJWKSet | None = None
        self._fetched_at = -float("inf")
        self._lock = asyncio.Lock()
        self._document: dict[str, Any] | None = None
        self._document_at = -float("inf")
        self._document_failed_at = -float("inf")

    @property
    def http(self) -> httpx.AsyncClient:
        return self._http

    async def verify(self, token: str) -> Claims:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise TokenRejected(f"the token is not a JWT ({exc})") from exc
        algorithm = header.get("alg")
        if algorithm not in self.config.algorithms:
            raise TokenRejected(
                f"tokens signed with {algorithm!r} are not accepted "
                f"(GATEWAY_OIDC_ALGORITHMS: {', '.join(self.config.algorithms)})"
            )
        key = await self._key(header.get("kid"))
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=[algorithm],
                audience=self.config.audience,
                issuer=self.config.issuer,
                leeway=self.config.leeway_seconds,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise TokenRejected("the token has expired: get a new one") from exc
        except jwt.InvalidAudienceError as exc:
            raise TokenRejected(
                f"the token is not for this application (audience must be {self.config.audience!r})"
            ) from exc
        except jwt.InvalidIssuerError as exc:
            raise TokenRejected(f"the token was not issued by {self.config.issuer}") from exc
        except jwt.PyJWTError as exc:
            raise TokenRejected(f"the token is not valid: {exc}") from exc
        subject = str(claims["sub"])
        name = str(claims.get("preferred_username") or claims.get("email") or subject)
        return Claims(subject, roles_from(claims, self.config.roles_claim), name)

    async def _key(self, kid: str | None) -> jwt.PyJWK:
        keys = await self._keyset(refresh=False)
        key = _find(keys, kid)
        if key is None and time.monotonic() - self._fetched_at >= MIN_REFETCH_SECONDS:
            key = _find(await self._keyset(refresh=True), kid)
        if key is None:
            raise TokenRejected(f"the token's signing key {kid!r} is not one of the issuer's")
        return key

    async def _keyset(self, refresh: bool) -> jwt.PyJWKSet:
        async with self._lock:
            fresh = time.monotonic() - self._fetched_at < self.config.cache_seconds
            if self._keys is not None and fresh and not refresh:
                return self._keys
            try:
                self._keys = await self._fetch()
                self._fetched_at = time.monotonic()
            except (httpx.HTTPError, ValueError, jwt.PyJWKSetError) as exc:
                log.warning("oidc_keys_fetch_failed", error=str(exc), issuer=self.config.issuer)
                if self._keys is None:
                    raise KeysUnavailable(str(exc)) from exc
                # Keep the keys we had (an issuer blip must not sign everyone out) and try
                # again in MIN_REFETCH_SECONDS.
                retry_at = time.monotonic() + MIN_REFETCH_SECONDS
                self._fetched_at = retry_at - self.config.cache_seconds
            return self._keys

    async def _fetch(self) -> jwt.PyJWKSet:
        url = self.config.jwks_url or await self._discover()
        keys = jwt.PyJWKSet.from_dict(await self._get_json(url))
        log.info("oidc_keys_fetched", url=url, keys=len(keys.keys))
        return keys

    async def discovery(self, fail_fast: bool = False) -> dict[str, Any]:
        """The issuer's discovery document, kept as long as its keys. `fail_fast`: within
        MIN_REFETCH_SECONDS of a failure, fail at once (/config asks on every page load)."""
        recent_failure = time.monotonic() - self._document_failed_at < MIN_REFETCH_SECONDS
        if self._document is None and fail_fast and recent_failure:
            raise ValueError(f"{self.config.issuer} was unreachable a moment ago")
        if (
            self._document is None
            or time.monotonic() - self._document_at >= self.config.cache_seconds
        ):
            try:
                document = await self._get_json(
                    self.config.issuer.rstrip("/") + "/.well-known/openid-configuration"
                )
            except (httpx.HTTPError, ValueError):
                self._document_failed_at = time.monotonic()
                raise
            if document.get("issuer") != self.config.issuer:
                raise ValueError(
                    f"the discovery document names issuer {document.get('issuer')!r}, "
                    f"not {self.config.issuer!r}"
                )
            self._document, self._document_at = document, time.monotonic()
        return self._document

    async def _discover(self) -> str:
        document = await self.discovery()
        url = document.get("jwks_uri")
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            raise ValueError("the discovery document has no jwks_uri")
        return url

    async def _get_json(self, url: str) -> dict[str, Any]:
        reply = await self._http.get(url, headers={"Accept": "application/json"})
        reply.raise_for_status()
        if len(reply.content) > MAX_JWKS_BYTES:
            raise ValueError(f"{url} answered {len(reply.content)} bytes, more than a key set")
        data = reply.json()
        if not isinstance(data, dict):
            raise ValueError(f"{url} did not answer a JSON object")
        return data

    async def close(self) -> None:
        await self._http.aclose()


def _find(keys: jwt.PyJWKSet, kid: str | None) -> jwt.PyJWK | None:
    if kid is None:  # an issuer with one key may leave kid out
        return keys.keys[0] if len(keys.keys) == 1 else None
    return next((k for k in keys.keys if k.key_id == kid), None)
