"""Settings of the search service (environment variables prefixed SEARCH_)."""

from pydantic_settings import SettingsConfigDict

from photosearch.common.settings import DatabaseSettings, NatsSettings, ServiceSettings


class SearchSettings(NatsSettings, DatabaseSettings, ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SEARCH_")

    grpc_port: int = 50052
