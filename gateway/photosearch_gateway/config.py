"""Settings of the gateway (environment variables prefixed GATEWAY_)."""

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# onnxruntime-web installed by `npm --prefix gateway/web ci` (see gateway/web/package.json).
DEFAULT_ORT_DIR = Path(__file__).resolve().parent.parent / "web/node_modules/onnxruntime-web/dist"
# Swagger UI for /docs, from the same npm install (no CDN: the CSP and closed networks).
DEFAULT_SWAGGER_DIR = Path(__file__).resolve().parent.parent / "web/node_modules/swagger-ui-dist"
# i18next's ES module, which the pages translate their words with.
DEFAULT_I18NEXT_DIR = Path(__file__).resolve().parent.parent / "web/node_modules/i18next/dist/esm"
# An origin as browsers send it: scheme, host and an optional port, nothing after.
_ORIGIN = re.compile(r"^https?://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:[0-9]{1,5})?$")


def split_origins(value: str) -> list[str]:
    return [o.strip().rstrip("/") for o in value.split(",") if o.strip()]


class GatewaySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore")

    host: str = "0.0.0.0"
    http_port: int = Field(default=8080, ge=0, le=65535)
    # Prometheus /metrics on a port of its own (Kubernetes: 9464, which no Ingress routes
    # to); unset, /metrics answers on the HTTP port (local runs).
    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    log_level: str = "info"
    log_format: str = "auto"
    # "uvloop" (faster) or "asyncio".
    event_loop: Literal["uvloop", "asyncio"] = "uvloop"
    catalog_addr: str = "127.0.0.1:50051"
    search_addr: str = "127.0.0.1:50052"
    embedder_addr: str = "127.0.0.1:50053"
    fallback_addr: str = "127.0.0.1:50054"
    # Directory with tls.crt/tls.key/ca.crt for calling TLS-enabled services; empty = plaintext.
    tls_dir: str = ""
    # Token for the admin routes; empty disables them (they answer 503).
    admin_token: SecretStr = SecretStr("")
    # When set, search and the web fallback need this token (or any token that may write).
    user_token: SecretStr = SecretStr("")
    # A shared token for contributors (small installs): it may create items and add photos.
    # Without it and without OIDC, only admins write.
    contributor_token: SecretStr = SecretStr("")
    # Contributors' items and photos wait for an admin's approval before anyone sees or
    # searches them; false publishes them at once (a small install of trusted people).
    review_contributions: bool = True
    # OIDC bearer tokens (JWTs) from this issuer name callers; empty = OIDC off.
    oidc_issuer: str = ""
    # The audience the tokens must name (the client id the identity provider issues them to).
    oidc_audience: str = ""
    # Where the signing keys are; empty = the issuer's discovery document says.
    oidc_jwks_url: str = ""
    # The page's own sign-in (authorization code with PKCE): the public client id the
    # identity provider knows the page by, and the scopes it asks for. Empty: the page
    # takes a pasted token only.
    oidc_client_id: str = ""
    oidc_scope: str = "openid profile"
    # The claim that lists a caller's roles; dots walk into objects (Keycloak:
    # "realm_access.roles"). A string value is split on spaces (the "scope" claim).
    oidc_roles_claim: str = "roles"
    oidc_contributor_role: str = "contributor"
    oidc_admin_role: str = "admin"
    oidc_algorithms: str = "RS256,ES256,PS256,EdDSA"
    # How long fetched keys are used; an unknown key id refetches them (at most every 30 s).
    oidc_jwks_cache_seconds: float = Field(default=3600.0, gt=0)
    # Clock skew allowed on exp/nbf/iat.
    oidc_leeway_seconds: float = Field(default=30.0, ge=0)
    # Default deadline for a call to another service.
    rpc_timeout_seconds: float = Field(default=5.0, gt=0)
    # Deadlines of the slow calls: a web lookup, a rebuild (streams the catalog), the report.
    fallback_timeout_seconds: float = Field(default=20.0, gt=0)
    admin_timeout_seconds: float = Field(default=30.0, gt=0)
    # What a 503 tells clients to wait before retrying.
    retry_after_seconds: int = Field(default=2, ge=1)
    # Where the embedder exports models (ModelFiles layout); the page downloads them from here.
    model_dir: Path = Path(".data/models")
    # onnxruntime-web's dist folder.
    ort_dir: Path = DEFAULT_ORT_DIR
    # swagger-ui-dist's folder (the /docs page).
    swagger_dir: Path = DEFAULT_SWAGGER_DIR
    # i18next's dist/esm folder.
    i18next_dir: Path = DEFAULT_I18NEXT_DIR
    # Per-client token buckets: sustained requests per minute and burst; 0 = no limit.
    search_rate_per_minute: float = Field(default=120.0, ge=0)
    search_burst: int = Field(default=30, ge=1)
    fallback_rate_per_minute: float = Field(default=10.0, ge=0)
    fallback_burst: int = Field(default=3, ge=1)
    # Writes by contributors (new items, photos), counted per identity and per address;
    # admins are not limited.
    write_rate_per_minute: float = Field(default=30.0, ge=0)
    write_burst: int = Field(default=10, ge=1)
    write_address_rate_per_minute: float = Field(default=60.0, ge=0)
    write_address_burst: int = Field(default=20, ge=1)
    # Honour X-Forwarded-For from these proxies (comma-separated IPs or CIDRs, e.g. the
    # ingress controller's pod network) when naming a client for the rate limits.
    trusted_proxies: str = ""
    # Other origins whose pages may call the API and load thumbnails, model files and the
    # wasm runtime (comma-separated, e.g. "https://shop.example.com"; "*" for any);
    # empty = same origin only.
    cors_origins: str = ""
    # Request head limit (request line and headers); a bigger head gets a 431.
    max_header_bytes: int = Field(default=64 * 1024, ge=4 * 1024)
    # Request body limits.
    max_json_bytes: int = Field(default=256 * 1024, ge=1024)
    # POST /api/v1/search: the fingerprint (within the JSON limit) plus up to four views of
    # local descriptors, 40 x 40 cells of 64-d int8 codes in base64 (533 KiB,
    # local_query.LOCAL_BODY_BYTES) and their JSON framing: 256 + 544 KiB.
    max_search_bytes: int = Field(default=800 * 1024, ge=1024)
    max_upload_bytes: int = Field(default=25 * 1024 * 1024, ge=1024)
    # How long the settings and active model read from catalog/search are reused.
    cache_seconds: float = Field(default=2.0, ge=0)

    @field_validator("cors_origins")
    @classmethod
    def _check_origins(cls, value: str) -> str:
        for origin in split_origins(value):
            if origin != "*" and not _ORIGIN.match(origin):
                raise ValueError(
                    f"{origin!r} is not an origin: write scheme://host[:port], e.g. "
                    "https://shop.example.com, without a path"
                )
        return value

    @field_validator("oidc_issuer", "oidc_jwks_url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        if value and not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value  # as written: the issuer must equal the tokens' "iss" exactly

    @model_validator(mode="after")
    def _check_oidc(self) -> "GatewaySettings":
        if self.oidc_issuer and not self.oidc_audience:
            raise ValueError(
                "GATEWAY_OIDC_AUDIENCE is required with GATEWAY_OIDC_ISSUER: without it a "
                "token the issuer made for another application would be accepted"
            )
        return self

    def oidc_algorithm_list(self) -> list[str]:
        return [a.strip() for a in self.oidc_algorithms.split(",") if a.strip()]

    def allowed_origins(self) -> list[str]:
        return split_origins(self.cors_origins)
