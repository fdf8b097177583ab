"""Entry point: python -m photosearch_catalog"""

import asyncio

from photosearch.common.grpc_server import serve
from photosearch.common.logging import configure_logging
from photosearch_catalog.config import CatalogSettings
from photosearch_catalog.server import build_server


async def main(settings: CatalogSettings) -> None:
    server, lifecycle = await build_server(settings)
    await serve(server, lifecycle, settings)


if __name__ == "__main__":
    settings = CatalogSettings()
    configure_logging("catalog", settings.log_level, settings.log_format)
    asyncio.run(main(settings))
