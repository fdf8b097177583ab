"""`python -m photosearch_devstack run`: the whole mesh on this machine until Ctrl-C."""

import argparse
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType

from photosearch_devstack.mesh import DEFAULT_PORTS, Mesh


def run(data_dir: Path) -> int:
    mesh = Mesh(data_dir, ports=dict(DEFAULT_PORTS))
    stop = threading.Event()

    def on_signal(signum: int, _: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    started = time.monotonic()
    try:
        print(f"starting photosearch (data in {mesh.data_dir}, logs in {mesh.log_dir}) ...")
        mesh.start(timeout=120)
        print(f"all services SERVING after {time.monotonic() - started:.1f} s")
        print(f"  web UI      {mesh.gateway_url}/")
        print(f"  admin page  {mesh.gateway_url}/admin  (token: {mesh.secrets['admin_token']})")
        print(f"  API docs    {mesh.gateway_url}/docs")
        for name in ("catalog", "search", "embedder", "fallback"):
            print(f"  {name:<11} grpc://{mesh.address(name)}")
        print("Ctrl-C stops everything.")
        while not stop.wait(1.0):
            for name, process in list(mesh.processes.items()):
                if process.poll() is not None:
                    print(f"{name} exited ({process.returncode}); restarting. See {mesh.log_dir}")
                    mesh.start_service(name)
    except Exception as exc:
        print(f"photosearch failed to start: {exc}", file=sys.stderr)
        return 1
    finally:
        print("stopping ...")
        mesh.stop()
        print("stopped.")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="photosearch_devstack")
    sub = parser.add_subparsers(dest="command", required=True)
    run_parser = sub.add_parser("run", help="start everything and wait for Ctrl-C")
    run_parser.add_argument("--data-dir", type=Path, default=Path(".data"))
    args = parser.parse_args()
    return run(args.data_dir)


if __name__ == "__main__":
    sys.exit(main())
