"""Fixtures for the fallback tests: a fake Google Vision on a free port, a test photo,
and a capture of every log line (structlog events and standard-library records, from
all loggers at DEBUG) so tests can prove what never gets logged."""

import io
import logging
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import pytest
import structlog
from PIL import Image

from tests.support.fake_vision import FakeVision

API_KEY = "AIzaSyFAKE-test-key-0123456789abcdef"


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


class _Records(logging.Handler):
    def __init__(self, sink: list[str]) -> None:
        super().__init__(logging.DEBUG)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        # The message and every extra (google's loggers put requests in extras).
        self.sink.append(f"{record.name} {record.getMessage()} {record.__dict__!r}")


@dataclass
class CapturedLogs:
    events: list[MutableMapping[str, Any]] = field(default_factory=list)
    records: list[str] = field(default_factory=list)

    def text(self) -> str:
        return "\n".join([*(repr(e) for e in self.events), *self.records])

    def names(self) -> list[object]:
        return [e.get("event") for e in self.events]


@pytest.fixture
def captured_logs() -> Iterator[CapturedLogs]:
    captured = CapturedLogs()
    handler = _Records(captured.records)
    # "google" does not propagate to the root logger unless configured: watch it too.
    loggers = [logging.getLogger(), logging.getLogger("google"), logging.getLogger("urllib3")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    try:
        with structlog.testing.capture_logs() as events:
            captured.events = events
            yield captured
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.removeHandler(handler)
            logger.setLevel(level)
