"""Entry point: python -m photosearch_embedder"""

import asyncio

from photosearch.common.grpc_server import serve
from photosearch.common.logging import configure_logging
from photosearch_embedder.config import EmbedderSettings
from photosearch_embedder.server import build_server


async def main(settings: EmbedderSettings) -> None:
    server, lifecycle = await build_server(settings)
    await serve(server, lifecycle, settings)


if __name__ == "__main__":
    settings = EmbedderSettings()
    configure_logging("embedder", settings.log_level, settings.log_format)
    asyncio.run(main(settings))
