"""Fixtures for the fallback tests: a fake Google Vision on a free port, a test photo,
and a capture of every log line (tests/support/captured_logs.py) so tests can prove
what never gets logged."""

import io
from collections.abc import Iterator

import pytest
from PIL import Image

from tests.support.captured_logs import CapturedLogs, capture_logs
from tests.support.fake_vision import FakeVision
from tests.support.fallback import API_KEY


@pytest.fixture(scope="module")
def fake_vision_server() -> Iterator[FakeVision]:
    with FakeVision(api_key=API_KEY) as fake:
        yield fake


@pytest.fixture
def fake_vision(fake_vision_server: FakeVision) -> FakeVision:
    fake_vision_server.reset()
    return fake_vision_server


@pytest.fixture(scope="session")
def photo() -> bytes:
    """A 2400x1800 JPEG (larger than what is uploaded)."""
    image = Image.new("RGB", (2400, 1800), (40, 90, 160))
    image.paste((230, 200, 30), (600, 400, 1800, 1400))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


@pytest.fixture
def captured_logs() -> Iterator[CapturedLogs]:
    with capture_logs() as captured:
        yield captured
