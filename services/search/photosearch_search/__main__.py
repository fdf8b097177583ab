"""Entry point: python -m photosearch_search"""

import asyncio

from photosearch.common.grpc_server import serve
from photosearch.common.logging import configure_logging
from photosearch_search.config import SearchSettings
from photosearch_search.server import build_server


async def main(settings: SearchSettings) -> None:
    server, lifecycle = await build_server(settings)
    await serve(server, lifecycle, settings)


if __name__ == "__main__":
    settings = SearchSettings()
    configure_logging("search", settings.log_level, settings.log_format)
    asyncio.run(main(settings))
