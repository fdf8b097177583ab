"""Readiness probe for gRPC services served with (mutual) TLS.

The kubelet's native gRPC probe speaks plaintext only, so with TLS on it is replaced by this
exec probe: it calls grpc.health.v1.Health/Check on 127.0.0.1 with the pod's own certificate
(which also serves as its client certificate) and exits 0 only when the answer is SERVING.

usage: python grpc_health_probe.py PORT SERVER_NAME TLS_DIR
"""

import sys
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

TIMEOUT_SECONDS = 3.0


def check(port: int, server_name: str, tls_dir: Path) -> bool:
    key, cert = tls_dir / "tls.key", tls_dir / "tls.crt"
    credentials = grpc.ssl_channel_credentials(
        root_certificates=(tls_dir / "ca.crt").read_bytes(),
        private_key=key.read_bytes(),
        certificate_chain=cert.read_bytes(),
    )
    # Dial loopback but verify the certificate against the name it was issued for.
    options = [("grpc.ssl_target_name_override", server_name)]
    with grpc.secure_channel(f"127.0.0.1:{port}", credentials, options=options) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=TIMEOUT_SECONDS
        )
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        sys.stderr.write(__doc__ or "")
        return 2
    port, server_name, tls_dir = int(argv[0]), argv[1], Path(argv[2])
    try:
        serving = check(port, server_name, tls_dir)
    except grpc.RpcError as exc:
        sys.stderr.write(f"health check failed: {exc.code().name}: {exc.details()}\n")
        return 1
    if not serving:
        sys.stderr.write("not serving\n")
    return 0 if serving else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
