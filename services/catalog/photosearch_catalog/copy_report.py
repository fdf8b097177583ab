"""The catalog's copy report: pairs of images of different items that are the same
picture, whatever model search runs: their PDQ hashes match (copy_matching.py), or, for
the copies PDQ's views miss, their pixels match once aligned (copy_check.py)."""

import asyncio

import numpy as np
from psycopg_pool import AsyncConnectionPool

from photosearch.common.errors import InvalidArgument
from photosearch_catalog import copy_check, copy_features
from photosearch_catalog.copy_hash import (
    DEFAULT_MATCH_DISTANCE,
    HASH_BYTES,
    SCHEME_VERSION,
    VIEW_NAMES,
)
from photosearch_catalog.copy_matching import MAX_DISTANCE, CopyMatch, find_matches
from photosearch_catalog.domain import CopyPair, CopyReport, StoredCopyHash
from photosearch_catalog.repository import CatalogRepository

DEFAULT_LIMIT = 100
# The pixel check's share of the report (the gateway gives an admin call 30 s); candidate
# pairs it has no time left for are counted in the report, never silently dropped.
CHECK_SECONDS = 10.0


def match_stored(
    stored: list[StoredCopyHash],
    max_distance: int,
    limit: int,
    check_seconds: float = CHECK_SECONDS,
) -> tuple[list[CopyPair], int]:
    """Hash matches (closest first), then pixel matches (most similar first), at most
    `limit`; and how many candidate pairs the pixel check left unchecked."""
    if len(stored) < 2:
        return [], 0
    views = np.frombuffer(b"".join(s.views for s in stored), dtype=np.uint8)
    views = views.reshape(len(stored), len(VIEW_NAMES), HASH_BYTES)
    _, inverse = np.unique(np.asarray([s.item_id for s in stored]), return_inverse=True)
    owners = inverse.astype(np.int64)
    by_hash = _hash_pairs(stored, find_matches(views, owners, max_distance, limit))
    if len(by_hash) >= limit:
        return by_hash, 0
    by_pixels, unchecked = _pixel_pairs(stored, views, owners, by_hash, check_seconds)
    return by_hash + by_pixels[: limit - len(by_hash)], unchecked


def _hash_pairs(stored: list[StoredCopyHash], matches: list[CopyMatch]) -> list[CopyPair]:
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
        for m in matches
    ]


def _pixel_pairs(
    stored: list[StoredCopyHash],
    views: np.ndarray,
    owners: np.ndarray,
    by_hash: list[CopyPair],
    seconds: float,
) -> tuple[list[CopyPair], int]:
    features = [copy_features.unpack(s.features) for s in stored]
    canonical = np.ascontiguousarray(views[:, 0])
    reported = {frozenset((p.image_id_a, p.image_id_b)) for p in by_hash}
    pairs = [
        (i, j)
        for i, j in copy_check.candidates(canonical, np.stack([f.colour for f in features]), owners)
        if frozenset((stored[i].image_id, stored[j].image_id)) not in reported
    ]
    found, unchecked = copy_check.check(features, pairs, seconds=seconds)
    out = []
    for m in found:
        a, b = stored[m.a], stored[m.b]
        bits = int(np.bitwise_count(canonical[m.a] ^ canonical[m.b]).sum())
        pair = CopyPair(
            a.item_id,
            a.image_id,
            b.item_id,
            b.image_id,
            bits,
            m.how,
            a.quality,
            b.quality,
            a.views[:HASH_BYTES],
            b.views[:HASH_BYTES],
            found_by="pixels",
            similarity=m.similarity,
        )
        out.append(pair)
    return out, unchecked


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
    pairs, unchecked = await asyncio.to_thread(
        match_stored, stored, max_distance, limit or DEFAULT_LIMIT
    )
    return CopyReport(pairs, max_distance, len(stored), unhashed, unchecked)
