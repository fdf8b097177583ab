"""Settings of the catalog service (environment variables prefixed CATALOG_)."""

from cryptography.fernet import Fernet, MultiFernet
from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from photosearch.common.images import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS
from photosearch.common.settings import DatabaseSettings, NatsSettings, ServiceSettings
from photosearch_catalog.import_fetch import FetchLimits
from photosearch_catalog.intake import ImageLimits
from photosearch_catalog.relay import RelayOptions

_KEY_HELP = (
    "CATALOG_SETTINGS_KEY must be a Fernet key: 32 random bytes in urlsafe base64 "
    "(44 characters), e.g. from `python -c 'from cryptography.fernet import Fernet; "
    "print(Fernet.generate_key().decode())'`. Several keys separated by commas rotate: "
    "the first encrypts, every one decrypts."
)


def settings_cipher(value: str) -> MultiFernet:
    """The cipher for secrets at rest; raises ValueError with an actionable message."""
    keys = [part.strip() for part in value.split(",") if part.strip()]
    if not keys:
        raise ValueError("CATALOG_SETTINGS_KEY is empty. " + _KEY_HELP)
    fernets = []
    for number, key in enumerate(keys, start=1):
        try:
            fernets.append(Fernet(key.encode()))
        except (ValueError, TypeError):
            message = f"key {number} of CATALOG_SETTINGS_KEY is malformed. " + _KEY_HELP
            raise ValueError(message) from None
    return MultiFernet(fernets)


class CatalogSettings(NatsSettings, DatabaseSettings, ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CATALOG_")

    grpc_port: int = 50051
    # Encrypts the Google Vision API key at rest; required, no default on purpose.
    settings_key: SecretStr
    max_image_bytes: int = Field(default=DEFAULT_MAX_BYTES, ge=1024)
    max_image_pixels: int = Field(default=DEFAULT_MAX_PIXELS, ge=10_000)
    # Largest thumbnail edge a caller may ask for, and the in-memory thumbnail cache.
    max_thumbnail_size: int = Field(default=1024, ge=16)
    thumbnail_cache_bytes: int = Field(default=64 * 1024 * 1024, ge=0)
    # The outbox relay: how often it re-checks without a notification, how often a
    # standby replica tries to take over, and the batch it reads per round.
    outbox_poll_seconds: float = Field(default=1.0, gt=0)
    outbox_standby_seconds: float = Field(default=2.0, gt=0)
    outbox_batch_size: int = Field(default=200, ge=1, le=10_000)
    # How often the outbox figures of /metrics (events waiting, oldest age) are read.
    metrics_sample_seconds: float = Field(default=15.0, gt=0)
    # How often the copy hasher looks for every image without a current hash (besides
    # the ones this replica stores, hashed at once): stored before hashing existed, by
    # an older scheme, or by a replica that stopped before hashing them.
    copy_hash_recheck_seconds: float = Field(default=300.0, gt=0)
    # Import jobs (StartImport): S3-compatible endpoint (empty: AWS, or boto3's own
    # AWS_ENDPOINT_URL_S3), photos fetched at once per replica, per-URL deadline and
    # redirects, and whether plain http and private addresses may be fetched (tests, an
    # intranet store; never on a cluster that can reach its own services).
    s3_endpoint_url: str = Field(
        default="", validation_alias=AliasChoices("CATALOG_S3_ENDPOINT_URL", "S3_ENDPOINT_URL")
    )
    import_concurrency: int = Field(default=8, ge=1, le=64)
    import_url_timeout_seconds: float = Field(default=20.0, gt=0)
    import_max_redirects: int = Field(default=3, ge=0, le=10)
    import_allow_private_urls: bool = False

    @field_validator("settings_key")
    @classmethod
    def _valid_fernet(cls, value: SecretStr) -> SecretStr:
        settings_cipher(value.get_secret_value())
        return value

    def cipher(self) -> MultiFernet:
        return settings_cipher(self.settings_key.get_secret_value())

    def image_limits(self) -> ImageLimits:
        return ImageLimits(self.max_image_bytes, self.max_image_pixels, self.max_thumbnail_size)

    def fetch_limits(self) -> FetchLimits:
        return FetchLimits(
            max_bytes=self.max_image_bytes,
            timeout_seconds=self.import_url_timeout_seconds,
            max_redirects=self.import_max_redirects,
            allow_private=self.import_allow_private_urls,
        )

    def relay_options(self) -> RelayOptions:
        return RelayOptions(
            stream_replicas=self.nats_stream_replicas,
            poll_seconds=self.outbox_poll_seconds,
            standby_seconds=self.outbox_standby_seconds,
            batch_size=self.outbox_batch_size,
        )
