"""The request id that follows one request across gRPC calls and NATS messages."""

import uuid

import structlog

REQUEST_ID_KEY = "x-request-id"


def new_request_id() -> str:
    return uuid.uuid4().hex


def current_request_id() -> str | None:
    value = structlog.contextvars.get_contextvars().get("request_id")
    return value if isinstance(value, str) else None


def bind_request_id(request_id: str | None) -> str:
    """Bind the given id (or a fresh one) to this task's log context."""
    rid = request_id or new_request_id()
    structlog.contextvars.bind_contextvars(request_id=rid)
    return rid
