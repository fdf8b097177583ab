"""Settings of the fallback service (environment variables prefixed FALLBACK_)."""

from photosearch.common.settings import ServiceSettings
from pydantic_settings import SettingsConfigDict


class FallbackSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="FALLBACK_")

    grpc_port: int = 50054
