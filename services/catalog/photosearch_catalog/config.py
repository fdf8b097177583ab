"""Settings of the catalog service (environment variables prefixed CATALOG_)."""

from photosearch.common.settings import DatabaseSettings, NatsSettings, ServiceSettings
from pydantic_settings import SettingsConfigDict


class CatalogSettings(NatsSettings, DatabaseSettings, ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CATALOG_")

    grpc_port: int = 50051
