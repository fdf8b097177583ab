"""Settings of the embedder service (environment variables prefixed EMBED_)."""

from photosearch.common.settings import NatsSettings, ServiceSettings
from pydantic_settings import SettingsConfigDict


class EmbedderSettings(NatsSettings, ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="EMBED_")

    grpc_port: int = 50053
