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


def first_run(mesh: Mesh) -> None:
    """On an empty dev stack, something to find at once: the demo catalog of sample
    photos, photo search turned on, and what to try. PHOTOSEARCH_DEMO=0 (`make run
    DEMO=0`) skips it. Dev only: a deployed catalog starts empty with photo search off."""
    if os.environ.get("PHOTOSEARCH_DEMO", "1") == "0" or not catalog_is_empty(mesh):
        return
    loaded = subprocess.run(
        [
            sys.executable,
            "-m",
            "photosearch_catalog.cli.demo",
            "--catalog",
            mesh.address("catalog"),
            "--if-empty",
            "--quiet",
        ],
        check=False,
    )
    if loaded.returncode != 0:
        print("The demo catalog did not load (above); `make demo` tries again.")
        return
    with grpc.insecure_channel(mesh.address("catalog")) as channel:
        stub = catalog_pb2_grpc.CatalogServiceStub(channel)
        stub.UpdateSettings(catalog_pb2.UpdateSettingsRequest(photo_search_enabled=True), timeout=5)
    print("Photo search is on, with a demo catalog of scikit-image's sample photos.")
    print(f"  Try it: open {mesh.gateway_url}/ and pick a photo of one of them, e.g.")
    print(f"  {sample_photo()}")
    print("  (or photograph it on a screen); `make run DEMO=0` starts without the demo.")


def sample_photo() -> str:
    try:
        import skimage.data
    except ImportError:
        return "the coffee cup of skimage/data/coffee.png"
    return str(Path(skimage.data.__file__).parent / "coffee.png")


def run(data_dir: Path, replicas: dict[str, int]) -> int:
    mesh = Mesh(data_dir, ports=dict(DEFAULT_PORTS), replicas=replicas)
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
        print(f"  contributor token (adds items and photos): {mesh.secrets['contributor_token']}")
        print(f"  API docs    {mesh.gateway_url}/docs")
        for name in mesh.instances:
            if name != "gateway":
                print(f"  {name:<11} grpc://{mesh.address(name)}  metrics {mesh.metrics_url(name)}")
        first_run(mesh)
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
    run_parser.add_argument("--embedders", type=int, default=1, help="embedder replicas")
    run_parser.add_argument("--search", type=int, default=1, help="search replicas")
    args = parser.parse_args()
    return run(args.data_dir, {"embedder": args.embedders, "search": args.search})


if __name__ == "__main__":
    sys.exit(main())
