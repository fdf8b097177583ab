"""gRPC interceptors: request ids across calls, domain errors -> status codes
(in this one place), and one canonical log line per RPC."""

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import psycopg
import structlog
from nats import errors as nats_errors

from photosearch.common import errors
from photosearch.common.context import REQUEST_ID_KEY, bind_request_id, current_request_id
from photosearch.common.logging import get_logger
from photosearch.common.metrics import ServiceMetrics

log = get_logger(__name__)

_STATUS_BY_ERROR: dict[type[errors.DomainError], grpc.StatusCode] = {
    errors.InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    errors.NotFound: grpc.StatusCode.NOT_FOUND,
    errors.AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    errors.FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    errors.PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    errors.Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    errors.ResourceExhausted: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.Unavailable: grpc.StatusCode.UNAVAILABLE,
    errors.DeadlineExceeded: grpc.StatusCode.DEADLINE_EXCEEDED,
}

# Infrastructure failures that retrying later can cure: reported as UNAVAILABLE (so callers
# back off and retry) rather than INTERNAL, wherever in a service they surface.
_DATABASE_ERRORS = (psycopg.OperationalError,)  # includes pool timeouts and lost connections
_MESSAGING_ERRORS = (
    nats_errors.TimeoutError,
    nats_errors.NoServersError,
    nats_errors.ConnectionClosedError,
    nats_errors.ConnectionDrainingError,
)

# Probes and reflection would drown the log; they are logged at debug level.
_QUIET_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")


def status_for(error: errors.DomainError) -> grpc.StatusCode:
    for cls in type(error).__mro__:
        if cls in _STATUS_BY_ERROR:
            return _STATUS_BY_ERROR[cls]  # type: ignore[index]
    return grpc.StatusCode.INTERNAL


def _metadata_value(context: grpc.aio.ServicerContext[Any, Any], key: str) -> str | None:
    for item_key, value in context.invocation_metadata() or ():
        if item_key == key:
            return value if isinstance(value, str) else value.decode()
    return None


class _Call:
    """Book-keeping for one RPC: context binding, error mapping and the log line."""

    def __init__(
        self,
        method: str,
        context: grpc.aio.ServicerContext[Any, Any],
        metrics: ServiceMetrics | None,
    ) -> None:
        self.method = method
        self.metrics = metrics
        self.context = context
        self.code = grpc.StatusCode.OK
        self.started = time.perf_counter()
        structlog.contextvars.clear_contextvars()
        bind_request_id(_metadata_value(context, REQUEST_ID_KEY))

    async def fail(self, exc: BaseException) -> None:
        if isinstance(exc, errors.DomainError):
            self.code = status_for(exc)
            await self.context.abort(self.code, str(exc))
        if isinstance(exc, psycopg.DataError):
            # The database refused a value the caller sent (e.g. a NUL character in a text).
            self.code = grpc.StatusCode.INVALID_ARGUMENT
            await self.context.abort(self.code, f"a value is not acceptable: {exc}")
        if isinstance(exc, _DATABASE_ERRORS + _MESSAGING_ERRORS):
            self.code = grpc.StatusCode.UNAVAILABLE
            what = "the database" if isinstance(exc, _DATABASE_ERRORS) else "the message bus"
            log.warning("rpc.dependency_unavailable", rpc=self.method, error=str(exc))
            await self.context.abort(self.code, f"{what} is unavailable; retry shortly")
        self.code = grpc.StatusCode.INTERNAL
        log.exception("rpc.unhandled_error", rpc=self.method)
        await self.context.abort(self.code, f"internal error (request id {current_request_id()})")

    def finish(self) -> None:
        elapsed = time.perf_counter() - self.started
        if self.metrics is not None:
            self.metrics.observe_rpc(self.method, self.code.name, elapsed)
        elapsed_ms = round(elapsed * 1000, 2)
        quiet = self.method.startswith(_QUIET_PREFIXES)
        emit = log.debug if quiet and self.code == grpc.StatusCode.OK else log.info
        emit("rpc", rpc=self.method, code=self.code.name, duration_ms=elapsed_ms)


def _wrap_unary_response(
    method: str, metrics: ServiceMetrics | None, inner: Callable[..., Awaitable[Any]]
) -> Any:
    async def behavior(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        call = _Call(method, context, metrics)
        try:
            return await inner(request, context)
        except grpc.aio.AbortError:
            call.code = context.code() or grpc.StatusCode.UNKNOWN  # type: ignore[assignment]
            raise
        except Exception as exc:
            await call.fail(exc)
        finally:
            call.finish()

    return behavior


def _wrap_stream_response(method: str, metrics: ServiceMetrics | None, inner: Any) -> Any:
    async def behavior(
        request: Any, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[Any]:
        call = _Call(method, context, metrics)
        try:
            async for response in inner(request, context):
                yield response
        except grpc.aio.AbortError:
            call.code = context.code() or grpc.StatusCode.UNKNOWN  # type: ignore[assignment]
            raise
        except Exception as exc:
            await call.fail(exc)
        finally:
            call.finish()

    return behavior


class ServiceInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    def __init__(self, metrics: ServiceMetrics | None = None) -> None:
        self.metrics = metrics

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Any]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Any:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        method = handler_call_details.method
        kwargs = {
            "request_deserializer": handler.request_deserializer,
            "response_serializer": handler.response_serializer,
        }
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                _wrap_unary_response(method, self.metrics, handler.unary_unary), **kwargs
            )
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(
                _wrap_unary_response(method, self.metrics, handler.stream_unary), **kwargs
            )
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                _wrap_stream_response(method, self.metrics, handler.unary_stream), **kwargs
            )
        return grpc.stream_stream_rpc_method_handler(
            _wrap_stream_response(method, self.metrics, handler.stream_stream), **kwargs
        )


def _with_request_id(details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
    rid = current_request_id()
    if rid is None:
        return details
    metadata = grpc.aio.Metadata(*(details.metadata or ()))
    if REQUEST_ID_KEY not in metadata:
        metadata.add(REQUEST_ID_KEY, rid)
    return grpc.aio.ClientCallDetails(
        details.method, details.timeout, metadata, details.credentials, details.wait_for_ready
    )


class RequestIdClientInterceptor(
    grpc.aio.UnaryUnaryClientInterceptor,  # type: ignore[type-arg]
    grpc.aio.UnaryStreamClientInterceptor,  # type: ignore[type-arg]
    grpc.aio.StreamUnaryClientInterceptor,  # type: ignore[type-arg]
    grpc.aio.StreamStreamClientInterceptor,  # type: ignore[type-arg]
):
    """Sends the current request id along with every outgoing call."""

    async def intercept_unary_unary(self, continuation, client_call_details, request):  # type: ignore[no-untyped-def]
        return await continuation(_with_request_id(client_call_details), request)

    async def intercept_unary_stream(self, continuation, client_call_details, request):  # type: ignore[no-untyped-def]
        return await continuation(_with_request_id(client_call_details), request)

    async def intercept_stream_unary(self, continuation, client_call_details, request_iterator):  # type: ignore[no-untyped-def]
        return await continuation(_with_request_id(client_call_details), request_iterator)

    async def intercept_stream_stream(self, continuation, client_call_details, request_iterator):  # type: ignore[no-untyped-def]
        return await continuation(_with_request_id(client_call_details), request_iterator)
