"""A capture of every log line, structlog events and standard-library records from all
loggers at DEBUG, so a test can prove what never gets logged (a key, a photo)."""

import logging
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import structlog


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


@contextmanager
def capture_logs() -> Iterator[CapturedLogs]:
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
