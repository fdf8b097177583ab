import json
import logging

import pytest
import structlog

from photosearch.common.context import bind_request_id
from photosearch.common.logging import configure_logging, get_logger, redact


@pytest.fixture(autouse=True)
def _reset_structlog():
    yield
    structlog.contextvars.clear_contextvars()
    structlog.reset_defaults()


def lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]


def test_json_lines_carry_service_level_event_and_request_id(capsys) -> None:
    configure_logging("catalog", fmt="json")
    bind_request_id("req-123")
    get_logger("x").info("item.created", item_id="i1")
    [record] = lines(capsys)
    assert record["service"] == "catalog"
    assert record["level"] == "info"
    assert record["event"] == "item.created"
    assert record["request_id"] == "req-123"
    assert record["item_id"] == "i1"


def test_standard_library_loggers_use_the_same_format(capsys) -> None:
    configure_logging("search", fmt="json")
    logging.getLogger("some.library").warning("disk %s", "full")
    [record] = lines(capsys)
    assert record["event"] == "disk full"
    assert record["service"] == "search"
    assert "request_id" in record


def test_registered_secrets_are_masked_everywhere(capsys) -> None:
    configure_logging("fallback", fmt="json")
    secret = "AIzaSy-very-secret-key"
    redact(secret)
    get_logger().info(f"calling with {secret}", nested={"key": [secret]})
    logging.getLogger("urllib").error("GET /v1?key=%s failed", secret)
    out = capsys.readouterr().out
    assert secret not in out
    assert out.count("[redacted]") >= 3
