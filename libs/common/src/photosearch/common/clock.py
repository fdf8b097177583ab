"""Durations as the logs, metrics and Server-Timing report them."""

import time


def elapsed_ms(started: float) -> float:
    """Milliseconds since `started` (a time.perf_counter() reading)."""
    return (time.perf_counter() - started) * 1000
