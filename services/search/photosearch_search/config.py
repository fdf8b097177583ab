"""Settings of the search service (environment variables prefixed SEARCH_)."""

from photosearch.common.settings import DatabaseSettings, NatsSettings, ServiceSettings
from pydantic_settings import SettingsConfigDict


class SearchSettings(NatsSettings, DatabaseSettings, ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SEARCH_")

    grpc_port: int = 50052
