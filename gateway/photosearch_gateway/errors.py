"""Every error the gateway answers, in one JSON shape, and the one place where
gRPC status codes become HTTP status codes."""

from typing import Any

import grpc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from photosearch.common.context import current_request_id
from photosearch.common.logging import get_logger

log = get_logger(__name__)

# gRPC status -> (HTTP status, error code in the body).
HTTP_BY_GRPC: dict[grpc.StatusCode, tuple[int, str]] = {
    grpc.StatusCode.INVALID_ARGUMENT: (400, "invalid_argument"),
    grpc.StatusCode.OUT_OF_RANGE: (400, "invalid_argument"),
    grpc.StatusCode.NOT_FOUND: (404, "not_found"),
    grpc.StatusCode.FAILED_PRECONDITION: (409, "failed_precondition"),
    grpc.StatusCode.ALREADY_EXISTS: (409, "already_exists"),
    grpc.StatusCode.ABORTED: (409, "aborted"),
    grpc.StatusCode.PERMISSION_DENIED: (403, "permission_denied"),
    grpc.StatusCode.UNAUTHENTICATED: (401, "unauthenticated"),
    grpc.StatusCode.RESOURCE_EXHAUSTED: (429, "resource_exhausted"),
    grpc.StatusCode.UNAVAILABLE: (503, "unavailable"),
    grpc.StatusCode.DEADLINE_EXCEEDED: (503, "unavailable"),
    grpc.StatusCode.CANCELLED: (503, "unavailable"),
}
# Anything else (INTERNAL, UNKNOWN, UNIMPLEMENTED, DATA_LOSS) is a fault upstream.
UPSTREAM_FAULT = (502, "upstream_error")
_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}


class ErrorDetail(BaseModel):
    code: str
    message: str
    request_id: str | None = None
    details: dict[str, Any] | None = None


class ErrorBody(BaseModel):
    """The body of every 4xx/5xx answer."""

    error: ErrorDetail


class ApiError(Exception):
    """An answer other than success; raised anywhere in a request."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers or {}


def error_response(
    status: int,
    code: str,
    message: str,
    details: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = ErrorBody(
        error=ErrorDetail(
            code=code, message=message, request_id=current_request_id(), details=details
        )
    )
    return JSONResponse(body.model_dump(exclude_none=True), status_code=status, headers=headers)


def from_rpc_error(exc: grpc.aio.AioRpcError, service: str, retry_after: int) -> ApiError:
    """The HTTP answer for a failed call to `service`."""
    code = exc.code()
    status, name = HTTP_BY_GRPC.get(code, UPSTREAM_FAULT)
    if status == 503:
        slow = code == grpc.StatusCode.DEADLINE_EXCEEDED
        reason = "did not answer in time" if slow else "is down"
        return ApiError(
            503,
            name,
            f"the {service} service {reason}; retry in a few seconds",
            headers={"Retry-After": str(retry_after)},
        )
    if (status, name) == UPSTREAM_FAULT:
        log.warning("upstream.fault", service=service, code=code.name, detail=exc.details())
        return ApiError(status, name, f"the {service} service failed ({code.name})")
    return ApiError(status, name, exc.details() or code.name.lower())


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {"field": ".".join(str(p) for p in e.get("loc", ())), "problem": e.get("msg", "")}
            for e in exc.errors()
        ]
        first = problems[0] if problems else {"field": "", "problem": "invalid request"}
        message = f"{first['field']}: {first['problem']}" if first["field"] else first["problem"]
        return error_response(400, "invalid_argument", message, {"problems": problems[:20]})

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        headers = dict(exc.headers or {})
        return error_response(exc.status_code, code, str(exc.detail), headers=headers)

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("request.unhandled_error")
        return error_response(
            500, "internal", f"internal error (request id {current_request_id()})"
        )
