"""glibc's allocator, set up for re-ranking's large temporary arrays.

Re-ranking allocates a few MB of arrays per search (the similarity matrix of the query's
cells against every candidate cell) in worker threads. With glibc's defaults a worker
thread's arena hands that memory back to the kernel after each search and faults it in
again on the next: about 1,000 page faults per search, which made a search's matching cost
30 to 50 % more CPU in a worker thread (docs/benchmarks/search.md).
Keeping freed memory in the arenas removes them."""

import ctypes
import ctypes.util

# mallopt(3) parameters.
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
# Allocations up to this come from the arenas instead of their own mmap (glibc's maximum
# on 64-bit; re-ranking 20 candidates with one view needs ~5 MB, with three ~15 MB).
MMAP_THRESHOLD = 32 * 1024 * 1024
# Free memory at the top of an arena kept for the next search instead of returned.
TRIM_THRESHOLD = 128 * 1024 * 1024


def keep_freed_memory() -> bool:
    """Tune the process's allocator (call once at start). False where the C library has no
    mallopt (not glibc): nothing is changed there, searches only cost more."""
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
