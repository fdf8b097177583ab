"""The catalog-quality report: likely duplicate entries (images of different items that
look alike) and, per item, how far its nearest other item is compared with its own
images (the smallest margins are the pairs most likely to be confused)."""

import asyncio
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from psycopg import AsyncConnection, sql
from psycopg.errors import QueryCanceled

from photosearch.common.errors import DeadlineExceeded
from photosearch_search.domain import (
    GLOBAL_VARIANT,
    Confusable,
    DuplicatePair,
    Model,
    Vector,
)

BLOCK_ROWS = 1024
# Neighbours per image in the approximate (large-catalog) path.
ANN_NEIGHBOURS = 10


@dataclass(frozen=True)
class DuplicateSettings:
    threshold: float  # the default when a report asks for none
    exact_max_images: int  # up to this many images every pair is compared; above, ANN
    timeout: float  # seconds the approximate report may take


@dataclass(frozen=True)
class Fingerprints:
    image_ids: list[str]
    item_ids: list[str]
    matrix: Vector  # n x dim, unit rows


async def load_fingerprints(conn: AsyncConnection, model: Model) -> Fingerprints:
    async with conn.cursor(binary=True) as cur:
        await cur.execute(
            sql.SQL(
                "SELECT image_id, item_id, embedding FROM {t} WHERE variant = %s ORDER BY image_id"
            ).format(t=sql.Identifier(model.table)),
            (GLOBAL_VARIANT,),
        )
        rows = await cur.fetchall()
    matrix = np.zeros((len(rows), model.dim), dtype=np.float32)
    for i, row in enumerate(rows):
        matrix[i] = row[2].to_numpy()
    return Fingerprints([str(r[0]) for r in rows], [str(r[1]) for r in rows], matrix)


def exact_report(
    prints: Fingerprints, threshold: float, limit: int
) -> tuple[list[DuplicatePair], list[Confusable]]:
    """Compare every pair of images (blockwise, so memory stays at BLOCK_ROWS x n)."""
    n = len(prints.image_ids)
    if n == 0:
        return [], []
    _, item_codes = np.unique(np.asarray(prints.item_ids), return_inverse=True)
    x = prints.matrix
    # The best `limit` pairs so far (score, row, column), kept as arrays: on a catalog of
    # look-alikes millions of pairs may pass the threshold.
    scores = np.empty(0, dtype=np.float32)
    rows_kept = np.empty(0, dtype=np.int64)
    cols_kept = np.empty(0, dtype=np.int64)
    nearest_score = np.full(n, -np.inf, dtype=np.float32)
    nearest_index = np.full(n, -1, dtype=np.int64)
    for start in range(0, n, BLOCK_ROWS):
        stop = min(start + BLOCK_ROWS, n)
        # Similarity is symmetric: compare this block only with itself and later rows.
        sims = x[start:stop] @ x[start:].T
        sims[item_codes[start:stop, None] == item_codes[None, start:]] = -np.inf
        sims[np.tri(stop - start, n - start, 0, dtype=bool)] = -np.inf  # j <= i
        _keep_nearest(nearest_score, nearest_index, sims, start)
        rows, cols = np.nonzero(sims >= threshold)
        scores = np.concatenate([scores, sims[rows, cols]])
        rows_kept = np.concatenate([rows_kept, rows + start])
        cols_kept = np.concatenate([cols_kept, cols + start])
        if len(scores) > limit:
            keep = np.argpartition(-scores, limit - 1)[:limit] if limit else np.empty(0, int)
            scores, rows_kept, cols_kept = scores[keep], rows_kept[keep], cols_kept[keep]
    order = np.lexsort((cols_kept, rows_kept, -scores))[:limit]
    duplicates = [
        DuplicatePair(
            prints.item_ids[a],
            prints.image_ids[a],
            prints.item_ids[b],
            prints.image_ids[b],
            float(score),
        )
        for score, a, b in zip(
            scores[order].tolist(),
            rows_kept[order].tolist(),
            cols_kept[order].tolist(),
            strict=True,
        )
    ]
    return duplicates, _confusables(prints, nearest_score, nearest_index, limit)


def _keep_nearest(
    nearest_score: npt.NDArray[np.float32],
    nearest_index: npt.NDArray[np.int64],
    sims: npt.NDArray[np.float32],
    start: int,
) -> None:
    """Fold one block (rows start.., columns start..) into each image's nearest other
    item: the block's rows look right, its columns look back at the rows."""
    block = np.arange(sims.shape[0])
    best_col = np.argmax(sims, axis=1)
    score = sims[block, best_col]
    better = score > nearest_score[start : start + len(block)]
    nearest_score[start : start + len(block)][better] = score[better]
    nearest_index[start : start + len(block)][better] = best_col[better] + start
    best_row = np.argmax(sims, axis=0)
    score = sims[best_row, np.arange(sims.shape[1])]
    better = score > nearest_score[start:]
    nearest_score[start:][better] = score[better]
    nearest_index[start:][better] = best_row[better] + start


def _own_scores(prints: Fingerprints) -> dict[str, float]:
    """Per item, the lowest similarity between two of its own images (1 with one image)."""
    members: dict[str, list[int]] = defaultdict(list)
    for i, item in enumerate(prints.item_ids):
        members[item].append(i)
    own: dict[str, float] = {}
    for item, idx in members.items():
        if len(idx) < 2:
            own[item] = 1.0
            continue
        sub = prints.matrix[idx] @ prints.matrix[idx].T
        own[item] = float(np.min(sub[~np.eye(len(idx), dtype=bool)]))
    return own


def _confusables(
    prints: Fingerprints,
    nearest_score: npt.NDArray[np.float32],
    nearest_index: npt.NDArray[np.int64],
    limit: int,
) -> list[Confusable]:
    best: dict[str, tuple[float, str]] = {}
    for i, item in enumerate(prints.item_ids):
        if nearest_index[i] < 0 or not np.isfinite(nearest_score[i]):
            continue  # a catalog of one item has no other item to confuse it with
        other = prints.item_ids[int(nearest_index[i])]
        if item not in best or nearest_score[i] > best[item][0]:
            best[item] = (float(nearest_score[i]), other)
    own = _own_scores(prints)
    confusables = [
        Confusable(item, other, score, own[item]) for item, (score, other) in best.items()
    ]
    confusables.sort(key=lambda c: (c.margin, c.item_id))
    return confusables[:limit]


async def exact(
    conn: AsyncConnection, model: Model, threshold: float, limit: int
) -> tuple[int, list[DuplicatePair], list[Confusable]]:
    prints = await load_fingerprints(conn, model)
    duplicates, confusables = await asyncio.to_thread(exact_report, prints, threshold, limit)
    return len(prints.image_ids), duplicates, confusables


async def count_fingerprints(conn: AsyncConnection, model: Model) -> int:
    cur = await conn.execute(
        sql.SQL("SELECT count(*) FROM {t} WHERE variant = %s").format(
            t=sql.Identifier(model.table)
        ),
        (GLOBAL_VARIANT,),
    )
    row = await cur.fetchone()
    return int(row[0]) if row else 0


async def approximate(
    conn: AsyncConnection, model: Model, threshold: float, limit: int, timeout: float
) -> tuple[list[DuplicatePair], list[Confusable]]:
    """Large catalogs: each image's nearest images of other items from the HNSW index
    (one index scan per image, inside Postgres; bounded by `timeout` seconds)."""
    try:
        async with conn.transaction():
            await conn.execute(
                "SELECT set_config('statement_timeout', %s, true)", (f"{int(timeout * 1000)}ms",)
            )
            return await _approximate(conn, model, threshold, limit)
    except QueryCanceled as exc:
        raise DeadlineExceeded(
            f"the duplicate report over this many images took longer than {timeout:.0f} s; "
            "raise SEARCH_DUPLICATE_REPORT_TIMEOUT_SECONDS or run it when the service is quiet"
        ) from exc


async def _approximate(
    conn: AsyncConnection, model: Model, threshold: float, limit: int
) -> tuple[list[DuplicatePair], list[Confusable]]:
    t = sql.Identifier(model.table)
    cur = await conn.execute(
        sql.SQL(
            "SELECT a.item_id, a.image_id, n.item_id, n.image_id, 1 - n.distance"
            " FROM {t} a CROSS JOIN LATERAL ("
            "  SELECT b.item_id, b.image_id, b.embedding <=> a.embedding AS distance FROM {t} b"
            "  WHERE b.variant = %(v)s AND b.item_id <> a.item_id"
            "  ORDER BY distance LIMIT %(n)s) n"
            " WHERE a.variant = %(v)s"
        ).format(t=t),
        {"v": GLOBAL_VARIANT, "n": ANN_NEIGHBOURS},
    )
    rows = await cur.fetchall()
    seen: set[tuple[str, str]] = set()
    duplicates: list[DuplicatePair] = []
    best: dict[str, tuple[float, str]] = {}
    for item_a, image_a, item_b, image_b, score in rows:
        score = float(score)
        if item_a not in best or score > best[item_a][0]:
            best[item_a] = (score, item_b)
        key = (min(image_a, image_b), max(image_a, image_b))
        if score >= threshold and key not in seen:
            seen.add(key)
            duplicates.append(DuplicatePair(item_a, image_a, item_b, image_b, score))
    duplicates.sort(key=lambda p: (-p.score, p.image_id_a, p.image_id_b))
    cur = await conn.execute(
        sql.SQL(
            "SELECT a.item_id, min(1 - (a.embedding <=> b.embedding)) FROM {t} a"
            " JOIN {t} b ON b.item_id = a.item_id AND b.image_id > a.image_id"
            " WHERE a.variant = %(v)s AND b.variant = %(v)s GROUP BY a.item_id"
        ).format(t=t),
        {"v": GLOBAL_VARIANT},
    )
    own = {str(r[0]): float(r[1]) for r in await cur.fetchall()}
    confusables = [
        Confusable(item, other, score, own.get(item, 1.0)) for item, (score, other) in best.items()
    ]
    confusables.sort(key=lambda c: (c.margin, c.item_id))
    return duplicates[:limit], confusables[:limit]
