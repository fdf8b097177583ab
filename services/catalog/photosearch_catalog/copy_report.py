"""The catalog's copy report: pairs of images of different items that one copy hash
says are the same picture (copy_matching.py), whatever model search runs."""

import asyncio

import numpy as np
from psycopg_pool import AsyncConnectionPool

from photosearch.common.errors import InvalidArgument
from photosearch_catalog.copy_hash import (
    DEFAULT_MATCH_DISTANCE,
    HASH_BYTES,
    SCHEME_VERSION,
    VIEW_NAMES,
)
from photosearch_catalog.copy_matching import MAX_DISTANCE, find_matches
from photosearch_catalog.domain import CopyPair, CopyReport, StoredCopyHash
from photosearch_catalog.repository import CatalogRepository

DEFAULT_LIMIT = 100


def match_stored(stored: list[StoredCopyHash], max_distance: int, limit: int) -> list[CopyPair]:
    if len(stored) < 2:
        return []
    views = np.frombuffer(b"".join(s.views for s in stored), dtype=np.uint8)
    views = views.reshape(len(stored), len(VIEW_NAMES), HASH_BYTES)
    _, owners = np.unique(np.asarray([s.item_id for s in stored]), return_inverse=True)
    return [
        CopyPair(
            stored[m.a].item_id,
            stored[m.a].image_id,
            stored[m.b].item_id,
            stored[m.b].image_id,
            m.distance,
            VIEW_NAMES[m.view],
            stored[m.a].quality,
            stored[m.b].quality,
            stored[m.a].views[:HASH_BYTES],
            stored[m.b].views[:HASH_BYTES],
        )
        for m in find_matches(views, owners.astype(np.int64), max_distance, limit)
    ]


async def copy_report(
    pool: AsyncConnectionPool, repo: CatalogRepository, max_distance: int, limit: int
) -> CopyReport:
    """`max_distance` 0 means PDQ's recommended 31; `limit` 0 means 100 pairs."""
    max_distance = max_distance or DEFAULT_MATCH_DISTANCE
    if not 1 <= max_distance <= MAX_DISTANCE:
        raise InvalidArgument(
            f"max_distance must be between 1 and {MAX_DISTANCE} bits of 256, got {max_distance}"
        )
    if limit < 0:
        raise InvalidArgument(f"limit must not be negative, got {limit}")
    async with pool.connection() as conn:
        stored = await repo.copy_hashes(conn, SCHEME_VERSION)
        unhashed = await repo.count_unhashed(conn, SCHEME_VERSION)
    pairs = await asyncio.to_thread(match_stored, stored, max_distance, limit or DEFAULT_LIMIT)
    return CopyReport(pairs, max_distance, len(stored), unhashed)
