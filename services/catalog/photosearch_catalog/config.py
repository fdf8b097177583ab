"""Settings of the catalog service (environment variables prefixed CATALOG_)."""

from pydantic_settings import SettingsConfigDict

from photosearch.common.settings import DatabaseSettings, NatsSettings, ServiceSettings


class CatalogSettings(NatsSettings, DatabaseSettings, ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CATALOG_")

    grpc_port: int = 50051
