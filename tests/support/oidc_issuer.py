"""A local OIDC issuer for tests: a real HTTP server on a free port serving the discovery
document and the signing keys (JWKS), minting RS256 tokens with those keys, and an
authorization code flow with PKCE whose user is already signed in (`user`, `user_roles`).

    with LocalIssuer(audience="photosearch") as issuer:      # own thread
        token = issuer.token("alice", roles=["contributor"])  # valid for 5 minutes
        issuer.rotate()                                       # a new key; the old one goes
        assert issuer.key_fetches == 1"""

import base64
import hashlib
import json
import time
import uuid
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from tests.support.http_server import LocalHttpServer, QuietHandler

DISCOVERY_PATH = "/.well-known/openid-configuration"
JWKS_PATH = "/keys"
AUTHORIZE_PATH = "/authorize"
TOKEN_PATH = "/token"
CLIENT_ID = "photosearch-page"


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
        # Who the authorization endpoint signs in, and the codes it gave out.
        self.user, self.user_roles = "alice", ["contributor"]
        self.codes: dict[str, dict[str, str]] = {}
        super().__init__()

    @property
    def jwks_url(self) -> str:
        return self.url + JWKS_PATH

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.url,
            "jwks_uri": self.jwks_url,
            "authorization_endpoint": self.url + AUTHORIZE_PATH,
            "token_endpoint": self.url + TOKEN_PATH,
        }

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
                    return self._json(200, issuer.discovery())
                if urlsplit(self.path).path == AUTHORIZE_PATH:
                    return self._authorize()
                if self.path == JWKS_PATH:
                    issuer.key_fetches += 1
                    return self._json(200, issuer.jwks())
                self._json(404, {"error": "not found"})

            def do_POST(self) -> None:
                if self.path != TOKEN_PATH:
                    return self._json(404, {"error": "not found"})
                length = int(self.headers.get("content-length") or 0)
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                grant = issuer.codes.pop(form.get("code", ""), None)
                verifier = form.get("code_verifier", "").encode()
                challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier).digest())
                if grant is None:
                    return self._json(
                        400, {"error": "invalid_grant", "error_description": "unknown code"}
                    )
                if challenge.rstrip(b"=").decode() != grant["challenge"]:
                    return self._json(
                        400,
                        {"error": "invalid_grant", "error_description": "PKCE verifier mismatch"},
                    )
                if (
                    form.get("redirect_uri") != grant["redirect_uri"]
                    or form.get("client_id") != CLIENT_ID
                ):
                    return self._json(
                        400, {"error": "invalid_grant", "error_description": "wrong client"}
                    )
                token = issuer.token(grant["user"], grant["roles"].split())
                self._json(200, {"access_token": token, "token_type": "Bearer", "expires_in": 300})

            def _authorize(self) -> None:
                """The user is signed in already: straight back with a code."""
                query = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
                if (
                    query.get("client_id") != CLIENT_ID
                    or query.get("code_challenge_method") != "S256"
                ):
                    return self._json(400, {"error": "invalid_request"})
                code = uuid.uuid4().hex
                issuer.codes[code] = {
                    "challenge": query["code_challenge"],
                    "redirect_uri": query["redirect_uri"],
                    "user": issuer.user,
                    "roles": " ".join(issuer.user_roles),
                }
                back = urlencode({"code": code, "state": query.get("state", "")})
                self.send_response(302)
                self.send_header("Location", f"{query['redirect_uri']}?{back}")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def _json(self, status: int, body: dict[str, Any]) -> None:
                self.send(status, json.dumps(body).encode(), "application/json")

        return Handler
