"""Admin settings: photo search and web fallback switches, and the Google Vision
API key. The key is write-only through the API, encrypted at rest with
CATALOG_SETTINGS_KEY (Fernet), and registered with the log redactor whenever
this process sees it, so it never shows up in a log line."""

from collections.abc import Callable

from cryptography.fernet import InvalidToken, MultiFernet
from psycopg_pool import AsyncConnectionPool

from photosearch.common.errors import FailedPrecondition, InvalidArgument
from photosearch.common.logging import get_logger, redact
from photosearch_catalog.domain import AdminSettings

log = get_logger(__name__)
MAX_KEY_LENGTH = 512


class AdminSettingsService:
    def __init__(self, pool: Callable[[], AsyncConnectionPool], cipher: MultiFernet) -> None:
        self._pool = pool
        self._cipher = cipher

    async def get(self) -> AdminSettings:
        async with self._pool().connection() as conn:
            cur = await conn.execute(
                "SELECT photo_search_enabled, web_fallback_enabled,"
                " vision_api_key_encrypted IS NOT NULL FROM admin_settings"
            )
            row = await cur.fetchone()
        assert row is not None, "admin_settings has its one row from the migration"
        return AdminSettings(bool(row[0]), bool(row[1]), bool(row[2]))

    async def update(
        self,
        *,
        photo_search_enabled: bool | None = None,
        web_fallback_enabled: bool | None = None,
        vision_api_key: str | None = None,
        clear_vision_api_key: bool = False,
    ) -> AdminSettings:
        assignments: list[str] = []
        params: list[object] = []
        if vision_api_key is not None and clear_vision_api_key:
            raise InvalidArgument("set vision_api_key or clear it, not both at once")
        if photo_search_enabled is not None:
            assignments.append("photo_search_enabled = %s")
            params.append(photo_search_enabled)
        if web_fallback_enabled is not None:
            assignments.append("web_fallback_enabled = %s")
            params.append(web_fallback_enabled)
        if vision_api_key is not None:
            assignments.append("vision_api_key_encrypted = %s")
            params.append(self._cipher.encrypt(_checked_key(vision_api_key).encode()))
        if clear_vision_api_key:
            assignments.append("vision_api_key_encrypted = NULL")
        if assignments:
            async with self._pool().connection() as conn:
                await conn.execute(
                    f"UPDATE admin_settings SET {', '.join(assignments)}, updated_at = now()",
                    params,
                )
            log.info(
                "settings.updated",
                photo_search_enabled=photo_search_enabled,
                web_fallback_enabled=web_fallback_enabled,
                vision_api_key_changed=vision_api_key is not None or clear_vision_api_key,
            )
        return await self.get()

    async def vision_credentials(self) -> tuple[bool, str]:
        """(web fallback enabled, decrypted API key or "") for the fallback service."""
        async with self._pool().connection() as conn:
            cur = await conn.execute(
                "SELECT web_fallback_enabled, vision_api_key_encrypted FROM admin_settings"
            )
            row = await cur.fetchone()
        assert row is not None
        enabled, token = bool(row[0]), row[1]
        if token is None:
            return enabled, ""
        try:
            key = self._cipher.decrypt(bytes(token)).decode()
        except InvalidToken:
            raise FailedPrecondition(
                "the stored Google Vision API key cannot be decrypted with the current "
                "CATALOG_SETTINGS_KEY (was the key replaced without keeping the old one?): "
                "set the API key again"
            ) from None
        redact(key)
        return enabled, key


def _checked_key(value: str) -> str:
    key = value.strip()
    redact(key)  # before anything could log it, even in an error
    if not key:
        raise InvalidArgument("vision_api_key is empty: to remove the key use clear_vision_api_key")
    if len(key) > MAX_KEY_LENGTH or any(ch.isspace() for ch in key):
        raise InvalidArgument(
            "vision_api_key does not look like a Google API key (no spaces, at most "
            f"{MAX_KEY_LENGTH} characters)"
        )
    return key
