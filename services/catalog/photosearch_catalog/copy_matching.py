"""Every pair of images of different items whose copy hashes match (copy_hash.py), found
without comparing every pair: multi-index hashing. Split each 256-bit canonical hash into
16 chunks of 16 bits; two hashes within 16 r + 15 bits agree to within r bits on at least
one chunk (pigeonhole), so probing each chunk's table with the chunk and its r-bit
neighbours finds every match, then the candidates are checked bit for bit. Plain numpy,
no database."""

from dataclasses import dataclass
from itertools import combinations

import numpy as np
import numpy.typing as npt

from photosearch_catalog.copy_hash import HASH_BYTES

CHUNKS = 16
CHUNK_BITS = 16
# Two neighbourhood bits per chunk (137 probes) reach 47; beyond it the probes explode
# and PDQ's own guidance stops well before.
MAX_DISTANCE = CHUNKS * 3 - 1
_QUERY_BLOCK = 4096  # canonical hashes probed at once: bounds the candidate arrays' memory


@dataclass(frozen=True)
class CopyMatch:
    a: int  # the image whose view matched
    b: int  # the image whose canonical hash it matched
    distance: int
    view: int  # index of a's view (0: a as is)


def _masks(radius: int) -> npt.NDArray[np.uint16]:
    masks = [0]
    for r in range(1, radius + 1):
        for bits in combinations(range(CHUNK_BITS), r):
            masks.append(sum(1 << b for b in bits))
    return np.asarray(masks, dtype=np.uint16)


def _words(hashes: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint64]:
    return np.ascontiguousarray(hashes).view(np.uint64).reshape(len(hashes), HASH_BYTES // 8)


def find_matches(
    views: npt.NDArray[np.uint8], owners: npt.NDArray[np.int64], max_distance: int, limit: int
) -> list[CopyMatch]:
    """`views`: n x V x 32 hashes (view 0 canonical); `owners`: each image's item code.
    Pairs of images of different items where some view of one lies within `max_distance`
    bits of the other's canonical hash, closest first, one per pair, at most `limit`."""
    if not 0 <= max_distance <= MAX_DISTANCE:
        raise ValueError(f"max_distance must be between 0 and {MAX_DISTANCE}")
    n, per_image = views.shape[0], views.shape[1]
    if n < 2 or limit <= 0:
        return []
    # The tables index every view (n x V rows); the canonical hashes probe them: probing
    # is the cost, and there are V times fewer canonical hashes than views.
    indexed = np.ascontiguousarray(views.reshape(n * per_image, HASH_BYTES))
    indexed_chunks = indexed.view(np.uint16).reshape(len(indexed), CHUNKS)
    tables = []
    for k in range(CHUNKS):
        order = np.argsort(indexed_chunks[:, k], kind="stable")
        starts = np.searchsorted(indexed_chunks[order, k], np.arange(2**CHUNK_BITS + 1))
        tables.append((order, starts))
    canonical = np.ascontiguousarray(views[:, 0])
    canonical_chunks = canonical.view(np.uint16).reshape(n, CHUNKS)
    indexed_words, canonical_words = _words(indexed), _words(canonical)
    masks = _masks(max_distance // CHUNKS)
    best: dict[tuple[int, int], tuple[int, int, int, int]] = {}
    for start in range(0, n, _QUERY_BLOCK):
        probe, rows = _candidates(canonical_chunks[start : start + _QUERY_BLOCK], tables, masks)
        probe += start
        image = rows // per_image
        keep = owners[image] != owners[probe]
        probe, rows, image = probe[keep], rows[keep], image[keep]
        bits = np.bitwise_count(indexed_words[rows] ^ canonical_words[probe]).sum(1)
        close = bits <= max_distance
        for b, row, d in zip(
            probe[close].tolist(), rows[close].tolist(), bits[close].tolist(), strict=True
        ):
            a, view = divmod(row, per_image)
            key = (min(a, b), max(a, b))
            found = (d, view, a, b)
            if key not in best or found < best[key]:
                best[key] = found
    matches = sorted(best.values(), key=lambda m: (m[0], min(m[2], m[3]), max(m[2], m[3])))
    return [CopyMatch(a, b, d, view) for d, view, a, b in matches[:limit]]


def _candidates(
    block: npt.NDArray[np.uint16],
    tables: list[tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]],
    masks: npt.NDArray[np.uint16],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """(probe row in block, indexed row) pairs sharing a chunk within the masks' bits."""
    rows_out, cands_out = [], []
    probe_rows = np.repeat(np.arange(len(block), dtype=np.int64), len(masks))
    for k, (order, starts) in enumerate(tables):
        probes = (block[:, k, None] ^ masks[None, :]).ravel().astype(np.int64)
        low = starts[probes]
        counts = starts[probes + 1] - low
        total = int(counts.sum())
        if not total:
            continue
        rows = np.repeat(probe_rows, counts)
        first = np.repeat(np.cumsum(counts) - counts, counts)
        cands = order[np.repeat(low, counts) + np.arange(total) - first]
        rows_out.append(rows)
        cands_out.append(cands.astype(np.int64))
    if not rows_out:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty
    # A close pair shares several chunks and comes back once per chunk; the caller keeps
    # one (deduplicating here costs more than checking the repeats).
    return np.concatenate(rows_out), np.concatenate(cands_out)
