"""A local OIDC issuer for tests: a real HTTP server on a free port serving the discovery
document and the signing keys (JWKS), and minting RS256 tokens with those keys.

    with LocalIssuer(audience="photosearch") as issuer:      # own thread
        token = issuer.token("alice", roles=["contributor"])  # valid for 5 minutes
        issuer.rotate()                                       # a new key; the old one goes
        assert issuer.key_fetches == 1"""

import json
import time
import uuid
from http.server import BaseHTTPRequestHandler
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from tests.support.http_server import LocalHttpServer, QuietHandler

DISCOVERY_PATH = "/.well-known/openid-configuration"
JWKS_PATH = "/keys"


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class LocalIssuer(LocalHttpServer):
    def __init__(self, audience: str = "photosearch") -> None:
        self.audience = audience
        self.key = new_key()
        self.kid = uuid.uuid4().hex[:12]
        self.key_fetches = 0
        self.discovery_fetches = 0
        self.down = False  # answer 503 to everything (an issuer outage)
        super().__init__()

    @property
    def jwks_url(self) -> str:
        return self.url + JWKS_PATH

    def jwks(self) -> dict[str, Any]:
        public = json.loads(RSAAlgorithm.to_jwk(self.key.public_key()))
        return {"keys": [{**public, "kid": self.kid, "use": "sig", "alg": "RS256"}]}

    def rotate(self) -> None:
        self.key, self.kid = new_key(), uuid.uuid4().hex[:12]

    def token(
        self,
        subject: str,
        roles: list[str] | None = None,
        *,
        lifetime: float = 300.0,
        key: rsa.RSAPrivateKey | None = None,
        kid: str | None = None,
        **claims: Any,
    ) -> str:
        now = int(time.time())
        body = {
            "iss": self.url,
            "aud": self.audience,
            "sub": subject,
            "iat": now,
            "exp": now + int(lifetime),
            "preferred_username": subject,
            **({"roles": roles} if roles is not None else {}),
            **claims,
        }
        headers = {"kid": kid or self.kid}
        return jwt.encode(body, key or self.key, algorithm="RS256", headers=headers)

    def handler(self) -> type[BaseHTTPRequestHandler]:
        issuer = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                if issuer.down:
                    return self._json(503, {"error": "down"})
                if self.path == DISCOVERY_PATH:
                    issuer.discovery_fetches += 1
                    return self._json(200, {"issuer": issuer.url, "jwks_uri": issuer.jwks_url})
                if self.path == JWKS_PATH:
                    issuer.key_fetches += 1
                    return self._json(200, issuer.jwks())
                self._json(404, {"error": "not found"})

            def _json(self, status: int, body: dict[str, Any]) -> None:
                self.send(status, json.dumps(body).encode(), "application/json")

        return Handler
