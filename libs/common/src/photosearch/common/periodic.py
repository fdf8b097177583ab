"""Background work repeated every few seconds until the service stops."""

import asyncio
from collections.abc import Awaitable, Callable

from photosearch.common.logging import get_logger

log = get_logger(__name__)


async def repeat(
    work: Callable[[], Awaitable[None]], seconds: float, stopping: asyncio.Event, *, failed: str
) -> None:
    """Run `work`, then wait `seconds` (or until `stopping`), again and again. A failed pass
    (e.g. Postgres or NATS away) is logged as `failed` and the next one retries."""
    while not stopping.is_set():
        try:
            await work()
        except Exception as exc:
            log.warning(failed, error=str(exc))
        try:
            await asyncio.wait_for(stopping.wait(), seconds)
        except TimeoutError:
            pass
