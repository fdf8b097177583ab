"""Settings of the gateway (environment variables prefixed GATEWAY_)."""

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class GatewaySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore")

    host: str = "0.0.0.0"
    http_port: int = Field(default=8080, ge=0, le=65535)
    log_level: str = "info"
    log_format: str = "auto"
    catalog_addr: str = "127.0.0.1:50051"
    search_addr: str = "127.0.0.1:50052"
    embedder_addr: str = "127.0.0.1:50053"
    fallback_addr: str = "127.0.0.1:50054"
    # Directory with tls.crt/tls.key/ca.crt for calling TLS-enabled services; empty = plaintext.
    tls_dir: str = ""
    # Token for the admin routes; empty disables them (they answer 503).
    admin_token: SecretStr = SecretStr("")
    # Default deadline for a call to another service.
    rpc_timeout_seconds: float = Field(default=5.0, gt=0)
