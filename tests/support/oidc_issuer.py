"""A local OIDC issuer for tests: a real HTTP server on a free port serving the discovery
document and the signing keys (JWKS), and minting RS256 tokens with those keys.

    with LocalIssuer(audience="photosearch") as issuer:      # own thread
        token = issuer.token("alice", roles=["contributor"])  # valid for 5 minutes
        issuer.rotate()                                       # a new key; the old one goes
        assert issuer.key_fetches == 1"""

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

DISCOVERY_PATH = "/.well-known/openid-configuration"
JWKS_PATH = "/keys"


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class LocalIssuer:
    def __init__(self, audience: str = "photosearch") -> None:
        self.audience = audience
        self.key = new_key()
        self.kid = uuid.uuid4().hex[:12]
        self.key_fetches = 0
        self.discovery_fetches = 0
        self.down = False  # answer 503 to everything (an issuer outage)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

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

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if issuer.down:
                    return self._send(503, {"error": "down"})
                if self.path == DISCOVERY_PATH:
                    issuer.discovery_fetches += 1
                    return self._send(200, {"issuer": issuer.url, "jwks_uri": issuer.jwks_url})
                if self.path == JWKS_PATH:
                    issuer.key_fetches += 1
                    return self._send(200, issuer.jwks())
                self._send(404, {"error": "not found"})

            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

    def __enter__(self) -> "LocalIssuer":
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()
