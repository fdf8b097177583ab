"""Free ports and waiting for a listener."""

import random
import socket
import time
from pathlib import Path

# Ports handed out by this process: two servers of one mesh never get the same one.
_given: set[int] = set()
_LOWEST = 10_000


def _ephemeral_start() -> int:
    """Where the ports the OS gives outgoing connections begin (Linux: 32768)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("0.0.0.0", port))  # the address servers bind: any use of the port conflicts
        except OSError:
            return False
    return True


def free_port() -> int:
    """A port nothing uses, below the ephemeral range: a port from that range (what binding
    to port 0 gives) can be taken by some outgoing connection between this check and the
    server's bind, which made a replica fail to start now and then."""
    top = _ephemeral_start()
    if top > _LOWEST + 1000:
        for _ in range(500):
            port = random.randrange(_LOWEST, top)
            if port not in _given and _bindable(port):
                _given.add(port)
                return port
    with socket.socket() as s:  # no room below the range: the OS's choice
        s.bind(("127.0.0.1", 0))
        chosen: int = s.getsockname()[1]
        return chosen


def wait_for_port(host: str, port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"nothing listens on {host}:{port} after {timeout:.0f} s"
                ) from None
            time.sleep(0.05)
