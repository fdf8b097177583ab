"""Entry point: python -m photosearch_search"""

import os

# One BLAS thread per call: re-ranking runs in its own threads (SEARCH_RERANK_THREADS),
# and OpenBLAS's extra threads spin between calls, taking the cores that numpy's other
# work needs (re-ranking cost 1.6x the CPU time with them; docs/benchmarks/search.md).
# Set before numpy loads; an operator's own value wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import asyncio

from photosearch.common.grpc_server import serve
from photosearch.common.logging import configure_logging, get_logger
from photosearch_search.allocator import keep_freed_memory
from photosearch_search.config import SearchSettings
from photosearch_search.server import build_server


async def main(settings: SearchSettings) -> None:
    server, lifecycle = await build_server(settings)
    await serve(server, lifecycle, settings)


if __name__ == "__main__":
    settings = SearchSettings()
    configure_logging("search", settings.log_level, settings.log_format)
    if not keep_freed_memory():
        get_logger(__name__).warning("allocator.not_tuned", reason="no glibc mallopt")
    asyncio.run(main(settings))
