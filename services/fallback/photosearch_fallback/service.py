"""WebDetect: check the admin settings, prepare the photo, ask Vision, map the leads.

The photo only lives in memory for the length of the call. Logs say how big it was,
what was uploaded and how the call ended; never the key, the photo or the leads."""

import asyncio
import contextvars
import functools
import time
from concurrent.futures import Executor

from photosearch.common import errors
from photosearch.common.logging import get_logger
from photosearch_fallback.config import FallbackSettings
from photosearch_fallback.credentials import CredentialsSource
from photosearch_fallback.leads import WebLeads, leads_from_web_detection
from photosearch_fallback.photo import PreparedPhoto, prepare_photo
from photosearch_fallback.vision import VisionWebDetector

log = get_logger(__name__)


class WebDetectService:
    def __init__(
        self,
        settings: FallbackSettings,
        credentials: CredentialsSource,
        detector: VisionWebDetector,
        executor: Executor | None = None,
    ) -> None:
        self._settings = settings
        self._credentials = credentials
        self._detector = detector
        self._executor = executor

    def _max_results(self, requested: int) -> int:
        limit = self._settings.max_results_limit
        if requested < 0 or requested > limit:
            raise errors.InvalidArgument(
                f"max_results must be between 1 and {limit} (0 = default), got {requested}"
            )
        return requested or min(self._settings.default_max_results, limit)

    async def _api_key(self) -> str:
        credentials = await self._credentials.get()
        missing = []
        if not credentials.web_fallback_enabled:
            missing.append("the web fallback is turned off")
        if not credentials.api_key:
            missing.append("no Google Vision API key is set")
        if missing:
            raise errors.FailedPrecondition(
                " and ".join(missing) + ": an admin can change this in the settings"
            )
        return credentials.api_key

    async def _prepare(self, image: bytes) -> PreparedPhoto:
        s = self._settings
        prepare = functools.partial(
            prepare_photo,
            image,
            max_side=s.upload_max_side,
            max_upload_bytes=s.upload_max_bytes,
            quality=s.upload_jpeg_quality,
            max_bytes=s.max_photo_bytes,
            max_pixels=s.max_photo_pixels,
        )
        context = contextvars.copy_context()
        # Decoding a 12 MP photo takes long enough to stall the event loop.
        return await asyncio.get_running_loop().run_in_executor(
            self._executor, context.run, prepare
        )

    async def web_detect(
        self, image: bytes, max_results: int, time_remaining: float | None = None
    ) -> WebLeads:
        """Leads for a photo. `time_remaining` is the caller's deadline, if it set one."""
        started = time.perf_counter()
        fields: dict[str, object] = {"photo_bytes": len(image)}
        outcome = "error"
        try:
            count = self._max_results(max_results)
            api_key = await self._api_key()
            photo = await self._prepare(image)
            fields.update(
                photo_width=photo.source_width,
                photo_height=photo.source_height,
                upload_bytes=len(photo.jpeg),
                upload_width=photo.width,
                upload_height=photo.height,
            )
            remaining = None
            if time_remaining is not None:
                # Leave the caller time to receive our answer (or our error).
                remaining = max(time_remaining - (time.perf_counter() - started) - 0.25, 0.1)
            try:
                web, attempts = await self._detector.detect(photo.jpeg, api_key, count, remaining)
            except (errors.Unauthenticated, errors.PermissionDenied):
                self._credentials.invalidate()  # a corrected key applies at once
                raise
            fields["attempts"] = attempts
            result = leads_from_web_detection(web)
            fields["leads"] = len(result.leads)
            outcome = "ok"
            return result
        except errors.DomainError as exc:
            outcome = type(exc).__name__
            raise
        finally:
            log.info(
                "web_detect",
                outcome=outcome,
                duration_ms=round((time.perf_counter() - started) * 1000, 1),
                **fields,
            )
