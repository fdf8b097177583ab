"""Outgoing gRPC channels: request-id propagation, optional TLS, keepalive."""

from pathlib import Path
from typing import Any

import grpc

from photosearch.common.grpc_server import MAX_MESSAGE_BYTES
from photosearch.common.interceptors import RequestIdClientInterceptor

CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    # Fail fast when a peer is gone rather than waiting for the full backoff.
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 2_000),
]
# A target naming several addresses ("ipv4:host:port,host:port", `make run SEARCH=2`) is
# balanced round robin. One address keeps pick_first: after its server restarts, the
# next call reconnects and waits, where round robin would fail calls until the backoff
# ends.
ROUND_ROBIN = [("grpc.lb_policy_name", "round_robin")]


def channel_options(target: str) -> list[tuple[str, Any]]:
    return CHANNEL_OPTIONS + (ROUND_ROBIN if "," in target else [])


def _read(path: Path) -> bytes | None:
    return path.read_bytes() if path.exists() else None


def open_channel(target: str, tls_dir: str = "") -> grpc.aio.Channel:
    """A channel to another photosearch service: TLS when `tls_dir` is set, verifying the
    peer against its `ca.crt` (or the system's roots without one), presenting `tls.crt`
    and `tls.key` as client certificate when both are there (mutual TLS)."""
    interceptors: Any = [RequestIdClientInterceptor()]
    if not tls_dir:
        return grpc.aio.insecure_channel(
            target, options=channel_options(target), interceptors=interceptors
        )
    folder = Path(tls_dir)
    key, cert = _read(folder / "tls.key"), _read(folder / "tls.crt")
    if key is None or cert is None:
        key = cert = None  # half a key pair is no client certificate
    credentials = grpc.ssl_channel_credentials(
        root_certificates=_read(folder / "ca.crt"),
        private_key=key,
        certificate_chain=cert,
    )
    return grpc.aio.secure_channel(
        target, credentials, options=channel_options(target), interceptors=interceptors
    )
