"""Background work repeated every few seconds until the service stops, and the wait
between two passes that ends early when it does."""

import asyncio
from collections.abc import Awaitable, Callable

from photosearch.common.logging import get_logger

log = get_logger(__name__)


async def sleep_unless(stopping: asyncio.Event, seconds: float) -> None:
    """Wait `seconds`, or less if `stopping` is set meanwhile."""
    try:
        await asyncio.wait_for(stopping.wait(), seconds)
    except TimeoutError:
        pass


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
        await sleep_unless(stopping, seconds)
