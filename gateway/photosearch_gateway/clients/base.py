"""What every upstream client shares: a deadline on each call, its latency in
the metrics, and failures turned into HTTP answers (errors.from_rpc_error)."""

import time
from typing import TypeVar

import grpc

from photosearch_gateway.errors import from_rpc_error
from photosearch_gateway.metrics import Metrics

Req = TypeVar("Req")
Resp = TypeVar("Resp")


class Upstream:
    """One service behind the gateway."""

    def __init__(
        self,
        service: str,
        channel: grpc.aio.Channel,
        metrics: Metrics,
        *,
        timeout: float,
        retry_after: int,
    ) -> None:
        self.service = service
        self.channel = channel
        self.metrics = metrics
        self.timeout = timeout
        self.retry_after = retry_after

    async def unary(
        self,
        method: str,
        call: "grpc.aio.UnaryUnaryMultiCallable[Req, Resp]",
        request: Req,
        timeout: float | None = None,
    ) -> Resp:
        """Call with a deadline; a failure becomes an ApiError with the mapped HTTP status."""
        started = time.perf_counter()
        code = "OK"
        try:
            return await call(request, timeout=timeout or self.timeout)
        except grpc.aio.AioRpcError as exc:
            code = exc.code().name
            raise from_rpc_error(exc, self.service, self.retry_after) from None
        finally:
            self.metrics.grpc_latency.labels(self.service, method, code).observe(
                time.perf_counter() - started
            )
