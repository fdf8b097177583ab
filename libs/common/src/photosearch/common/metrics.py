"""Prometheus metrics of one service process: the gRPC server's requests by method
and code (the names go-grpc-prometheus made standard, so existing dashboards read
them), whether the service is SERVING, process figures, and whatever the service's
own modules register. One registry per service object, so several services built in
one process (tests) never share counters.

The registry is served on its own port (SERVICE_METRICS_PORT, 9464 by default), never
on a public one: in Kubernetes a PodMonitor scrapes it and no Ingress routes to it."""

import threading
from dataclasses import dataclass
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    start_http_server,
)

from photosearch.common.logging import get_logger

log = get_logger(__name__)

# From a cached lookup (~1 ms) to a re-ranked search or an import batch (seconds).
RPC_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def split_method(full_method: str) -> tuple[str, str]:
    """'/photosearch.search.v1.SearchService/Search' ->
    ('photosearch.search.v1.SearchService', 'Search')."""
    service, _, method = full_method.lstrip("/").rpartition("/")
    return service, method


class ServiceMetrics:
    def __init__(self, service: str) -> None:
        self.service = service
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        self.rpc_handled = Counter(
            "grpc_server_handled",
            "RPCs completed on the server, by service, method and status code.",
            ["grpc_service", "grpc_method", "grpc_code"],
            registry=self.registry,
        )
        self.rpc_seconds = Histogram(
            "grpc_server_handling_seconds",
            "Time the server took to answer an RPC, by service and method.",
            ["grpc_service", "grpc_method"],
            buckets=RPC_BUCKETS,
            registry=self.registry,
        )
        self.serving = Gauge(
            "photosearch_serving",
            "1 while the service's health check answers SERVING, 0 while NOT_SERVING.",
            ["service"],
            registry=self.registry,
        )
        self.serving.labels(service).set(0)

    def observe_rpc(self, full_method: str, code: str, seconds: float) -> None:
        service, method = split_method(full_method)
        self.rpc_handled.labels(service, method, code).inc()
        self.rpc_seconds.labels(service, method).observe(seconds)

    def set_serving(self, serving: bool) -> None:
        self.serving.labels(self.service).set(1 if serving else 0)


@dataclass
class MetricsEndpoint:
    """The HTTP server that answers GET /metrics, in a thread of its own (a scrape never
    waits for the event loop, and a busy loop never hides the figures that explain it)."""

    httpd: WSGIServer
    thread: threading.Thread

    @property
    def port(self) -> int:
        return int(self.httpd.server_port)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


def serve_metrics(registry: CollectorRegistry, host: str, port: int) -> MetricsEndpoint:
    """Serve `registry` on host:port (0 picks a free port)."""
    httpd, thread = start_http_server(port, addr=host, registry=registry)
    endpoint = MetricsEndpoint(httpd, thread)
    log.info("metrics.serving", port=endpoint.port)
    return endpoint
