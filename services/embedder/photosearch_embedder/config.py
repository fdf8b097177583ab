"""Settings of the embedder service (environment variables prefixed EMBED_)."""

from pydantic_settings import SettingsConfigDict

from photosearch.common.settings import NatsSettings, ServiceSettings


class EmbedderSettings(NatsSettings, ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="EMBED_")

    grpc_port: int = 50053
