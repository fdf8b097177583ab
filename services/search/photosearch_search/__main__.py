"""Entry point: python -m photosearch_search"""

import os

# One BLAS thread per call: re-ranking runs in its own threads (SEARCH_RERANK_THREADS),
# and OpenBLAS's extra threads spin between calls, taking the cores that numpy's other
# work needs (re-ranking cost 1.6x the CPU time with them; docs/benchmarks/search.md).
# Set before numpy loads; an operator's own value wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from photosearch.common.entrypoint import main
from photosearch.common.logging import get_logger
from photosearch_search.allocator import keep_freed_memory
from photosearch_search.config import SearchSettings
from photosearch_search.server import build_server


def tune_allocator() -> None:
    """The service process only: tests that build servers in-process keep glibc's defaults."""
    if not keep_freed_memory():
        get_logger(__name__).warning("allocator.not_tuned", reason="no glibc mallopt")


if __name__ == "__main__":
    main(build_server, SearchSettings, "search", process_setup=tune_allocator)
