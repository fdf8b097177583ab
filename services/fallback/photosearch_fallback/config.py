"""Settings of the fallback service (environment variables prefixed FALLBACK_)."""

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from photosearch.common.settings import ServiceSettings
from photosearch_fallback.vision import VisionOptions


class FallbackSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="FALLBACK_")

    grpc_port: int = 50054
    # Where catalog's gRPC listens: it holds the enabled flag and the Vision API key.
    catalog_addr: str = "127.0.0.1:50051"
    # Seconds the enabled flag and key read from catalog are reused (0 = read on every call).
    credentials_cache_seconds: float = Field(default=5.0, ge=0)
    # Deadline of one read from catalog.
    catalog_timeout_seconds: float = Field(default=3.0, gt=0)

    # Empty = Google's endpoint; tests and air-gapped deployments set e.g. http://127.0.0.1:8089.
    vision_endpoint: str = ""
    # Total time a WebDetect may spend on Vision, retries included. A caller's shorter
    # gRPC deadline wins; keeping this below the gateway's (20 s) means the caller gets
    # this service's own explanation rather than a bare deadline.
    vision_deadline_seconds: float = Field(default=15.0, gt=0)
    # Time one attempt may take (two attempts fit in the deadline).
    vision_attempt_timeout_seconds: float = Field(default=8.0, gt=0)
    # Attempts on transient failures (UNAVAILABLE, 429, 5xx, connection errors, timeouts).
    vision_max_attempts: int = Field(default=3, ge=1, le=10)
    # First backoff between attempts; doubles each time, with jitter.
    vision_backoff_seconds: float = Field(default=0.5, ge=0)
    vision_backoff_max_seconds: float = Field(default=4.0, ge=0)
    # Parallel Vision calls (each holds one worker thread: the client is synchronous).
    vision_concurrency: int = Field(default=4, ge=1, le=64)

    # Largest photo accepted, before preparation.
    max_photo_bytes: int = Field(default=25 * 1024 * 1024, ge=1)
    max_photo_pixels: int = Field(default=50_000_000, ge=1)
    # The uploaded JPEG's longest side and size budget: well within Vision's limits
    # (20 MB per image, 10 MB per JSON request), and enough for web matching.
    upload_max_side: int = Field(default=1600, ge=64, le=8000)
    upload_max_bytes: int = Field(default=4 * 1024 * 1024, ge=64 * 1024, le=10 * 1024 * 1024)
    upload_jpeg_quality: int = Field(default=88, ge=30, le=95)
    # Results per kind of lead when a request says 0, and the most a request may ask for.
    default_max_results: int = Field(default=10, ge=1)
    max_results_limit: int = Field(default=50, ge=1)

    def vision_options(self) -> VisionOptions:
        return VisionOptions(
            endpoint=self.vision_endpoint,
            deadline_seconds=self.vision_deadline_seconds,
            attempt_timeout_seconds=self.vision_attempt_timeout_seconds,
            max_attempts=self.vision_max_attempts,
            backoff_seconds=self.vision_backoff_seconds,
            backoff_max_seconds=self.vision_backoff_max_seconds,
            concurrency=self.vision_concurrency,
        )
