"""Typed settings. Each service subclasses ServiceSettings with its own env prefix,
e.g. CATALOG_GRPC_PORT, SEARCH_DATABASE_URL."""

from typing import Literal, Self

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from photosearch.common import nats as nats_helpers


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_nested_delimiter="__", extra="ignore")

    host: str = "0.0.0.0"
    grpc_port: int = Field(default=50051, ge=0, le=65535)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # auto = JSON lines unless stdout is a terminal.
    log_format: Literal["auto", "json", "console"] = "auto"
    # Seconds in-flight RPCs get to finish on SIGTERM (keep below the pod's grace period).
    shutdown_grace_seconds: float = Field(default=10.0, ge=0)
    # Directory with tls.crt/tls.key (and ca.crt for mutual TLS); empty = plaintext.
    tls_dir: str = ""
    # Prometheus /metrics on a port of its own, never a public one (0 = a free port).
    metrics_port: int = Field(default=9464, ge=0, le=65535)

    @property
    def grpc_address(self) -> str:
        return f"{self.host}:{self.grpc_port}"


class NatsSettings(BaseSettings):
    """Mixed into the settings of services that use NATS."""

    nats_url: str = "nats://127.0.0.1:4222"
    # 3 in production (a clustered JetStream); 1 for the embedded server.
    nats_stream_replicas: int = Field(default=1, ge=1, le=5)
    # What the server asks for, if anything: a user and password, a token, or a credentials
    # file (JWT and nkey seed); and for TLS the CA of the server's certificate. Folded into
    # nats_url, the one string a service hands to photosearch.common.nats.connect.
    nats_user: str = ""
    nats_password: str = ""
    nats_token: str = ""
    nats_creds_file: str = ""
    nats_tls_ca: str = ""

    @model_validator(mode="after")
    def _fold_credentials_into_the_url(self) -> Self:
        self.nats_url = nats_helpers.nats_url(
            self.nats_url,
            user=self.nats_user,
            password=self.nats_password,
            token=self.nats_token,
            creds_file=self.nats_creds_file,
            tls_ca=self.nats_tls_ca,
        )
        return self


class DatabaseSettings(BaseSettings):
    """Mixed into the settings of services that own a Postgres database."""

    database_url: str = "postgresql://postgres@127.0.0.1:5432/postgres"
    database_pool_min: int = Field(default=1, ge=0)
    database_pool_max: int = Field(default=10, ge=1)
