"""Entry point: python -m photosearch_catalog"""

import asyncio
import sys

from pydantic import ValidationError

from photosearch.common.grpc_server import serve
from photosearch.common.logging import configure_logging
from photosearch_catalog.config import CatalogSettings
from photosearch_catalog.server import build_server


async def main(settings: CatalogSettings) -> None:
    server, lifecycle = await build_server(settings)
    await serve(server, lifecycle, settings)


def load_settings() -> CatalogSettings:
    """Settings from the environment, or exit with what is missing or malformed."""
    try:
        return CatalogSettings()
    except ValidationError as exc:
        problems = "; ".join(
            f"CATALOG_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}"
            for e in exc.errors()
        )
        sys.exit(f"catalog: invalid configuration: {problems}")


if __name__ == "__main__":
    settings = load_settings()
    configure_logging("catalog", settings.log_level, settings.log_format)
    asyncio.run(main(settings))
