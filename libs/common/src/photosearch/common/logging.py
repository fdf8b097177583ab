"""structlog set-up: JSON lines in production, a readable console on a TTY.

Every line carries service, level, event, timestamp and request_id. Values
registered with `redact()` (secrets such as API keys) are masked wherever they
appear, as defence in depth behind "never log a secret"."""

import logging
import sys
from typing import Any

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

_REDACTED = "[redacted]"
_secrets: set[str] = set()


def redact(secret: str) -> None:
    """Mask this value in every log line from now on."""
    if len(secret) >= 4:
        _secrets.add(secret)


def _mask(value: Any) -> Any:
    if isinstance(value, str):
        for secret in _secrets:
            if secret in value:
                value = value.replace(secret, _REDACTED)
        return value
    if isinstance(value, dict):
        return {k: _mask(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_mask(v) for v in value)
    return value


def _redact_secrets(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    if not _secrets:
        return event_dict
    return {k: _mask(v) for k, v in event_dict.items()}


def _with_service(service: str) -> Processor:
    def add(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
        event_dict.setdefault("service", service)
        event_dict.setdefault("request_id", None)
        return event_dict

    return add


def configure_logging(service: str, level: str = "info", fmt: str = "auto") -> None:
    """Route structlog and the standard library's logging to stdout in one format."""
    as_json = fmt == "json" or (fmt == "auto" and not sys.stdout.isatty())
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _with_service(service),
        structlog.processors.format_exc_info,
        _redact_secrets,
    ]
    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if as_json
        else structlog.dev.ConsoleRenderer(colors=sys.stdout.isatty())
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        # Not cached: module-level loggers keep following the configuration (and test captures).
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Libraries that are chatty at INFO.
    for name in ("httpx", "httpcore", "asyncio"):
        logging.getLogger(name).setLevel(logging.WARNING)


def get_logger(name: str | None = None) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger
