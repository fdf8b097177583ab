"""Settings of the fallback service (environment variables prefixed FALLBACK_)."""

from pydantic_settings import SettingsConfigDict

from photosearch.common.settings import ServiceSettings


class FallbackSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="FALLBACK_")

    grpc_port: int = 50054
