"""`python -m photosearch_devstack run`: the whole mesh on this machine until Ctrl-C."""

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import FrameType

import grpc

from photosearch.catalog.v1 import catalog_pb2, catalog_pb2_grpc
from photosearch_devstack.mesh import DEFAULT_PORTS, Mesh


def catalog_is_empty(mesh: Mesh) -> bool:
    with grpc.insecure_channel(mesh.address("catalog")) as channel:
        stub = catalog_pb2_grpc.CatalogServiceStub(channel)
        reply = stub.CountImages(catalog_pb2.CountImagesRequest(), timeout=5)
        return reply.count == 0


def offer_demo(mesh: Mesh) -> None:
    """On a first start (empty catalog), offer a small demo catalog of sample photos.
    PHOTOSEARCH_DEMO=1 loads it without asking, PHOTOSEARCH_DEMO=0 never offers it."""
    choice = os.environ.get("PHOTOSEARCH_DEMO", "")
    if choice == "0" or not catalog_is_empty(mesh):
        return
    if choice != "1":
        if not sys.stdin.isatty():
            print("The catalog is empty: `make demo` loads sample photos to try recognition.")
            return
        # Ctrl-C at the prompt raises (and still stops everything) instead of waiting for Enter.
        previous = signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            answer = input("The catalog is empty. Load a demo catalog of sample photos? [Y/n] ")
        finally:
            signal.signal(signal.SIGINT, previous)
        if answer.strip().lower() not in ("", "y", "yes"):
            return
    subprocess.run(
        [
            sys.executable,
            "-m",
            "photosearch_catalog.cli.demo",
            "--catalog",
            mesh.address("catalog"),
            "--if-empty",
        ],
        check=False,
    )


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
        offer_demo(mesh)
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
