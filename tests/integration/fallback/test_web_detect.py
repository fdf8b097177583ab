"""WebDetect through the real google-cloud-vision client (REST transport) against a
local fake of Vision that speaks the real wire format: leads, retries, mapped errors,
what is uploaded, and that neither the key nor the photo is ever logged."""

import base64
import io
from collections.abc import Iterator

import pytest
from PIL import Image

from photosearch.common import errors
from photosearch_fallback.config import FallbackSettings
from photosearch_fallback.credentials import VisionCredentials
from photosearch_fallback.leads import LeadType
from photosearch_fallback.service import WebDetectService
from photosearch_fallback.vision import VisionWebDetector
from tests.support.captured_logs import CapturedLogs
from tests.support.fake_vision import RICH_WEB_DETECTION, FakeVision, Reply
from tests.support.fallback import API_KEY


class StaticCredentials:
    """Stands in for catalog's settings (catalog itself is exercised in test_grpc)."""

    def __init__(self, enabled: bool = True, api_key: str = API_KEY) -> None:
        self.value = VisionCredentials(enabled, api_key)
        self.invalidated = 0

    async def get(self) -> VisionCredentials:
        return self.value

    def invalidate(self) -> None:
        self.invalidated += 1


def fast_settings(endpoint: str, **overrides: object) -> FallbackSettings:
    values: dict[str, object] = {
        "vision_endpoint": endpoint,
        "vision_deadline_seconds": 3.0,
        "vision_attempt_timeout_seconds": 0.5,
        "vision_max_attempts": 3,
        "vision_backoff_seconds": 0.02,
        "vision_backoff_max_seconds": 0.1,
        "upload_max_side": 1024,
        **overrides,
    }
    return FallbackSettings(**values)  # type: ignore[arg-type]


@pytest.fixture
def credentials() -> StaticCredentials:
    return StaticCredentials()


@pytest.fixture
def service(fake_vision: FakeVision, credentials: StaticCredentials) -> Iterator[WebDetectService]:
    settings = fast_settings(fake_vision.endpoint)
    detector = VisionWebDetector(settings.vision_options())
    yield WebDetectService(settings, credentials, detector)
    detector.close()


async def test_a_rich_reply_becomes_leads(
    service: WebDetectService, fake_vision: FakeVision, photo: bytes
) -> None:
    fake_vision.enqueue(Reply.web_detection(RICH_WEB_DETECTION))
    result = await service.web_detect(photo, max_results=7)
    assert result.best_guess_labels == ["boba fett kenner 1979"]
    kinds = {lead.type for lead in result.leads}
    assert kinds == set(LeadType)
    pages = [lead for lead in result.leads if lead.type == LeadType.PAGE_WITH_MATCHING_IMAGE]
    assert pages[0].title == "Boba Fett 1979 Kenner & Palitoy \u2013 figure guide"

    [request] = fake_vision.requests
    assert request.path == "/v1/images:annotate"
    assert request.features == [{"type": 10, "maxResults": 7}]
    # The key travels in the x-goog-api-key header, never in the URL.
    assert request.headers["x-goog-api-key"] == API_KEY
    assert "key" not in request.query
    [uploaded] = request.images
    image = Image.open(io.BytesIO(uploaded))
    assert image.format == "JPEG"
    assert image.size == (1024, 768)  # 2400x1800 downscaled to the configured side


async def test_an_empty_reply_gives_no_leads(
    service: WebDetectService, fake_vision: FakeVision, photo: bytes
) -> None:
    fake_vision.enqueue(Reply.empty())
    result = await service.web_detect(photo, max_results=0)
    assert result.leads == []
    assert result.best_guess_labels == []
    assert fake_vision.requests[0].max_results == 10  # the default


@pytest.mark.parametrize(
    ("replies", "error", "message"),
    [
        (
            [Reply.error(403, "Requests to this API are blocked.")],
            errors.PermissionDenied,
            "API key was rejected",
        ),
        # google-auth re-sends a request answered 401 (twice) before giving up.
        ([Reply.error(401)] * 3, errors.Unauthenticated, "API key was rejected"),
        ([Reply.key_invalid()], errors.Unauthenticated, "API key was rejected"),
        ([Reply.error(429, "Quota exceeded")] * 3, errors.ResourceExhausted, "quota"),
        ([Reply.error(500)] * 3, errors.Unavailable, "HTTP 500"),
        ([Reply.error(503)] * 3, errors.Unavailable, "HTTP 503"),
        ([Reply.slow(5)] * 3, errors.DeadlineExceeded, "did not answer"),
        ([Reply.disconnect()] * 3, errors.Unavailable, "cannot reach Google Vision"),
        (
            [Reply.error(400, "Request payload size exceeds the limit")],
            errors.InvalidArgument,
            "payload size",
        ),
        ([Reply.image_error(3, "Bad image data.")], errors.InvalidArgument, "Bad image data"),
    ],
    ids=[
        "403",
        "401",
        "bad-key",
        "429",
        "500",
        "503",
        "timeout",
        "disconnect",
        "400",
        "image-error",
    ],
)
async def test_failures_map_to_clear_errors(
    service: WebDetectService,
    fake_vision: FakeVision,
    photo: bytes,
    replies: list[Reply],
    error: type[errors.DomainError],
    message: str,
) -> None:
    fake_vision.enqueue(*replies)
    with pytest.raises(error, match=message) as caught:
        await service.web_detect(photo, max_results=5)
    assert API_KEY not in str(caught.value)


async def test_permanent_errors_are_not_retried_and_transient_ones_are(
    service: WebDetectService, fake_vision: FakeVision, photo: bytes
) -> None:
    fake_vision.enqueue(Reply.error(403))
    with pytest.raises(errors.PermissionDenied):
        await service.web_detect(photo, max_results=5)
    assert len(fake_vision.requests) == 1

    fake_vision.reset()
    fake_vision.enqueue(Reply.error(429), Reply.error(503), Reply.web_detection(RICH_WEB_DETECTION))
    result = await service.web_detect(photo, max_results=5)
    assert result.best_guess_labels == ["boba fett kenner 1979"]
    assert len(fake_vision.requests) == 3


async def test_a_rejected_key_is_read_again_on_the_next_call(
    service: WebDetectService,
    fake_vision: FakeVision,
    credentials: StaticCredentials,
    photo: bytes,
) -> None:
    fake_vision.enqueue(Reply.key_invalid())
    with pytest.raises(errors.Unauthenticated):
        await service.web_detect(photo, max_results=5)
    assert credentials.invalidated == 1


async def test_a_timeout_stops_at_the_callers_deadline(
    service: WebDetectService, fake_vision: FakeVision, photo: bytes
) -> None:
    fake_vision.set_default(Reply.slow(5))
    with pytest.raises(errors.DeadlineExceeded):
        await service.web_detect(photo, max_results=5, time_remaining=0.6)
    # 0.6 s minus the margin left for the answer: no room for a second 0.5 s attempt.
    assert len(fake_vision.requests) == 1


@pytest.mark.parametrize(
    ("enabled", "key", "message"),
    [
        (False, API_KEY, "the web fallback is turned off"),
        (True, "", "no Google Vision API key is set"),
        (False, "", "turned off and no Google Vision API key is set"),
    ],
)
async def test_refused_unless_enabled_with_a_key(
    fake_vision: FakeVision, photo: bytes, enabled: bool, key: str, message: str
) -> None:
    settings = fast_settings(fake_vision.endpoint)
    detector = VisionWebDetector(settings.vision_options())
    service = WebDetectService(settings, StaticCredentials(enabled, key), detector)
    with pytest.raises(errors.FailedPrecondition, match=message):
        await service.web_detect(photo, max_results=5)
    detector.close()
    assert fake_vision.requests == []  # the photo never left


@pytest.mark.parametrize("max_results", [-1, 51])
async def test_max_results_out_of_range_is_refused(
    service: WebDetectService, fake_vision: FakeVision, photo: bytes, max_results: int
) -> None:
    with pytest.raises(errors.InvalidArgument, match="max_results must be between 1 and 50"):
        await service.web_detect(photo, max_results=max_results)
    assert fake_vision.requests == []


async def test_not_a_photo_is_refused_before_upload(
    service: WebDetectService, fake_vision: FakeVision
) -> None:
    with pytest.raises(errors.InvalidArgument, match="not a supported image"):
        await service.web_detect(b"%PDF-1.7 not a photo", max_results=5)
    assert fake_vision.requests == []


async def test_neither_the_key_nor_the_photo_is_ever_logged(
    service: WebDetectService,
    fake_vision: FakeVision,
    photo: bytes,
    captured_logs: CapturedLogs,
) -> None:
    # Success, retries, a rejected key, and an upstream message that echoes the key.
    fake_vision.enqueue(
        Reply.error(503),
        Reply.web_detection(RICH_WEB_DETECTION),
        Reply.error(403, f"key {API_KEY} is blocked"),
        Reply.key_invalid(),
    )
    await service.web_detect(photo, max_results=5)
    for _ in range(2):
        with pytest.raises(errors.DomainError) as caught:
            await service.web_detect(photo, max_results=5)
        assert API_KEY not in str(caught.value)
    [_, uploaded, *_] = fake_vision.requests

    names = captured_logs.names()
    assert names.count("web_detect") == 3 and "vision.attempt_failed" in names
    assert any("images:annotate" in record for record in captured_logs.records)  # urllib3
    text = captured_logs.text()
    assert API_KEY not in text
    assert base64.b64encode(uploaded.images[0])[:64].decode() not in text
    outcome = next(e for e in captured_logs.events if e.get("event") == "web_detect")
    assert outcome["photo_bytes"] == len(photo)
    assert outcome["upload_bytes"] == len(uploaded.images[0])
    assert outcome["outcome"] == "ok"
