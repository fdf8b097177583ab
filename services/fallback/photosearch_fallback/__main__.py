"""Entry point: python -m photosearch_fallback"""

import asyncio

from photosearch.common.grpc_server import serve
from photosearch.common.logging import configure_logging
from photosearch_fallback.config import FallbackSettings
from photosearch_fallback.server import build_server


async def main(settings: FallbackSettings) -> None:
    server, lifecycle = await build_server(settings)
    await serve(server, lifecycle, settings)


if __name__ == "__main__":
    settings = FallbackSettings()
    configure_logging("fallback", settings.log_level, settings.log_format)
    asyncio.run(main(settings))
