"""SQL of the region index (tables codebooks and region_postings): codebooks stored and
read back, the photos a codebook has no postings for yet and their postings, and the
query that ranks photos by the words they share with a query's views."""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from psycopg import AsyncConnection, sql

from photosearch.common.local import LocalGrid
from photosearch_search.codebook import Bag, Codebook
from photosearch_search.domain import Filters, ImageRef, Model
from photosearch_search.local_store import decode
from photosearch_search.nearest import filter_clause

FLOAT32 = np.dtype("<f4")
# A row of `COPY (word int4, photo int4, weight float4) TO STDOUT (FORMAT BINARY)`: the
# field count, then each field's length and value, big-endian.
POSTING_ROW = np.dtype(
    [("fields", ">i2"), ("word_len", ">i4"), ("word", ">i4"), ("photo_len", ">i4"),
     ("photo", ">i4"), ("weight_len", ">i4"), ("weight", ">f4")]
)  # fmt: skip
COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"


@dataclass(frozen=True)
class AllPostings:
    """Every posting of one codebook version, as arrays: photo numbers index `photos`
    ((image id, item id), in image id order: the word query's tie order)."""

    photos: list[tuple[str, str]]
    word: npt.NDArray[np.int32]
    photo: npt.NDArray[np.int32]
    weight: npt.NDArray[np.float32]


@dataclass(frozen=True)
class CodebookVersion:
    version: int
    trained_photos: int
    ready: bool
    changes: int = 0  # statements that changed its postings (migration 007)


async def versions(conn: AsyncConnection, model_id: str) -> list[CodebookVersion]:
    """The model's codebooks, newest first."""
    cur = await conn.execute(
        "SELECT version, trained_photos, ready_at IS NOT NULL, postings_changes FROM codebooks"
        " WHERE model_id = %s ORDER BY version DESC",
        (model_id,),
    )
    return [CodebookVersion(int(v), int(p), bool(r), int(c)) for v, p, r, c in await cur.fetchall()]


async def load(conn: AsyncConnection, model_id: str, version: int) -> Codebook | None:
    cur = await conn.execute(
        "SELECT dim, centroids, idf, trained_photos FROM codebooks"
        " WHERE model_id = %s AND version = %s",
        (model_id, version),
        binary=True,
    )
    row = await cur.fetchone()
    if row is None:
        return None
    dim, centroids, idf, photos = row
    matrix = np.frombuffer(centroids, dtype=FLOAT32).astype(np.float32).reshape(-1, int(dim))
    return Codebook(version, matrix, np.frombuffer(idf, dtype=FLOAT32).astype(np.float32), photos)


async def save(conn: AsyncConnection, model_id: str, codebook: Codebook) -> None:
    await conn.execute(
        "INSERT INTO codebooks (model_id, version, dim, centroids, idf, trained_photos)"
        " VALUES (%s, %s, %s, %s, %s, %s)",
        (
            model_id,
            codebook.version,
            codebook.dim,
            codebook.centroids.astype(FLOAT32).tobytes(),
            codebook.idf.astype(FLOAT32).tobytes(),
            codebook.photos,
        ),
    )


async def stored_photos(conn: AsyncConnection, model_id: str) -> int:
    cur = await conn.execute(
        "SELECT count(*) FROM local_descriptors WHERE model_id = %s", (model_id,)
    )
    row = await cur.fetchone()
    return int(row[0]) if row else 0


async def indexed_photos(conn: AsyncConnection, model_id: str, version: int) -> int:
    cur = await conn.execute(
        "SELECT count(DISTINCT image_id) FROM region_postings WHERE model_id = %s AND version = %s",
        (model_id, version),
    )
    row = await cur.fetchone()
    return int(row[0]) if row else 0


async def ready_coverage(conn: AsyncConnection, model_id: str) -> tuple[int, int]:
    """(photos with postings, words) of the codebook searches use; (0, 0) without one."""
    cur = await conn.execute(
        "SELECT c.version, length(c.idf) / 4 FROM codebooks c"
        " WHERE c.model_id = %s AND c.ready_at IS NOT NULL ORDER BY c.version DESC LIMIT 1",
        (model_id,),
    )
    row = await cur.fetchone()
    if row is None:
        return 0, 0
    return await indexed_photos(conn, model_id, int(row[0])), int(row[1])


async def training_grids(conn: AsyncConnection, model_id: str, limit: int) -> list[LocalGrid]:
    """What a codebook is trained on: up to `limit` stored photos, the first by the hash
    of their codes (the same photos whatever their ids; codebook.train orders alike)."""
    cur = await conn.execute(
        "SELECT grid_rows, grid_cols, dim, cells, codes FROM local_descriptors"
        " WHERE model_id = %s ORDER BY sha256(codes) LIMIT %s",
        (model_id, limit),
        binary=True,
    )
    return [
        decode(int(r), int(c), int(d), cells, codes)
        for r, c, d, cells, codes in await cur.fetchall()
    ]


async def photos_lacking(
    conn: AsyncConnection, model_id: str, version: int, limit: int
) -> list[tuple[ImageRef, LocalGrid]]:
    """Stored photos with no postings under this codebook yet."""
    cur = await conn.execute(
        "SELECT d.image_id, d.item_id, d.grid_rows, d.grid_cols, d.dim, d.cells, d.codes"
        " FROM local_descriptors d WHERE d.model_id = %s AND NOT EXISTS ("
        "  SELECT 1 FROM region_postings p WHERE p.model_id = d.model_id"
        "  AND p.image_id = d.image_id AND p.version = %s)"
        " ORDER BY d.image_id LIMIT %s",
        (model_id, version, limit),
        binary=True,
    )
    return [
        (ImageRef(str(image), str(item)), decode(int(r), int(c), int(d), cells, codes))
        for image, item, r, c, d, cells, codes in await cur.fetchall()
    ]


async def add_postings(
    conn: AsyncConnection,
    model_id: str,
    version: int,
    photos: Sequence[tuple[ImageRef, Bag]],
) -> None:
    """Postings of photos that had none under this codebook; a photo deleted meanwhile
    gets none."""
    for ref, bag in photos:
        await conn.execute(
            "INSERT INTO region_postings (model_id, version, word, image_id, item_id, weight)"
            " SELECT %s, %s, w, %s, %s, x FROM unnest(%s::int4[], %s::float4[]) AS b(w, x)"
            " WHERE EXISTS (SELECT 1 FROM local_descriptors"
            "  WHERE model_id = %s AND image_id = %s) ON CONFLICT DO NOTHING",
            (
                model_id,
                version,
                ref.image_id,
                ref.item_id,
                bag.words.tolist(),
                bag.weights.tolist(),
                model_id,
                ref.image_id,
            ),
        )


async def mark_ready(conn: AsyncConnection, model_id: str, version: int) -> None:
    """The version serves searches from now on; older ones and their postings go."""
    await conn.execute(
        "UPDATE codebooks SET ready_at = now() WHERE model_id = %s AND version = %s"
        " AND ready_at IS NULL",
        (model_id, version),
    )
    await conn.execute(
        "DELETE FROM codebooks WHERE model_id = %s AND version < %s", (model_id, version)
    )


async def top_photos(
    conn: AsyncConnection,
    model: Model,
    version: int,
    views: Sequence[Bag],
    filters: Filters,
    limit: int,
) -> list[tuple[str, str, float]]:
    """(item id, image id, score) of the photos sharing the most weight with any view:
    the cosine of the tf-idf bags (codebook.similarity), best view per photo; only items
    that pass the filters (their attributes live with the model's vectors)."""
    view_of, words, weights = [], [], []
    for number, bag in enumerate(views):
        view_of += [number] * len(bag.words)
        words += bag.words.tolist()
        weights += bag.weights.tolist()
    where, params = filter_clause(filters)
    allowed = (
        sql.SQL(" WHERE p.item_id IN (SELECT item_id FROM {t}{where})").format(
            t=sql.Identifier(model.table), where=where
        )
        if filters
        else sql.SQL("")
    )
    query = sql.SQL(
        "SELECT item_id, image_id, max(score) AS best FROM ("
        " SELECT q.view, p.item_id, p.image_id, sum(p.weight::float8 * q.weight) AS score"
        " FROM unnest(%(views)s::int2[], %(words)s::int4[], %(weights)s::float4[])"
        "  AS q(view, word, weight)"
        " JOIN region_postings p ON p.model_id = %(model)s AND p.version = %(version)s"
        "  AND p.word = q.word{allowed}"
        " GROUP BY q.view, p.item_id, p.image_id) s"
        " GROUP BY item_id, image_id ORDER BY best DESC, image_id LIMIT %(limit)s"
    ).format(allowed=allowed)
    # Never prepared: a prepared statement soon runs a generic plan, which cannot see
    # how many words the arrays hold and joined every posting with every word
    # (0.3 s on 50 photos instead of 5 ms, docs/benchmarks/search.md).
    cur = await conn.execute(
        query,
        {
            **params,
            "views": view_of,
            "words": words,
            "weights": weights,
            "model": model.model_id,
            "version": version,
            "limit": limit,
        },
        prepare=False,
    )
    return [(str(i), str(m), float(s)) for i, m, s in await cur.fetchall()]


async def all_postings(
    conn: AsyncConnection, model_id: str, version: int, max_postings: int
) -> AllPostings | int:
    """Every posting of the version, read in one snapshot; or, when there are more than
    `max_postings`, how many were counted (up to max_postings + 1: the count stops)."""
    async with conn.transaction():
        await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        cur = await conn.execute(
            "SELECT count(*) FROM (SELECT 1 FROM region_postings"
            " WHERE model_id = %s AND version = %s LIMIT %s) s",
            (model_id, version, max_postings + 1),
        )
        row = await cur.fetchone()
        counted = int(row[0]) if row else 0
        if counted > max_postings:
            return counted
        cur = await conn.execute(
            "SELECT image_id, min(item_id) FROM region_postings"
            " WHERE model_id = %s AND version = %s GROUP BY image_id ORDER BY image_id",
            (model_id, version),
        )
        photos = [(str(i), str(m)) for i, m in await cur.fetchall()]
        # Photo numbers as Postgres orders the ids (its collation), in the same snapshot.
        copy = sql.SQL(
            "COPY (SELECT word, (dense_rank() OVER (ORDER BY image_id) - 1)::int4, weight"
            " FROM region_postings WHERE model_id = {model} AND version = {version})"
            " TO STDOUT (FORMAT BINARY)"
        ).format(model=sql.Literal(model_id), version=sql.Literal(version))
        chunks = []
        async with conn.cursor().copy(copy) as stream:
            async for chunk in stream:
                chunks.append(bytes(chunk))
    rows = _copy_rows(b"".join(chunks))
    return AllPostings(
        photos,
        rows["word"].astype(np.int32),
        rows["photo"].astype(np.int32),
        rows["weight"].astype(np.float32),
    )


def _copy_rows(data: bytes) -> npt.NDArray[np.void]:
    """The rows of a binary COPY of (int4, int4, float4), none NULL."""
    if not data.startswith(COPY_SIGNATURE) or len(data) < 21:
        raise ValueError("region postings: not a binary COPY stream")
    extension = int.from_bytes(data[15:19], "big")
    body = data[19 + extension : -2]  # the trailer is a field count of -1
    if len(body) % POSTING_ROW.itemsize:
        raise ValueError("region postings: a COPY row of unexpected size")
    rows = np.frombuffer(body, dtype=POSTING_ROW)
    widths = (rows["word_len"] == 4) & (rows["photo_len"] == 4) & (rows["weight_len"] == 4)
    if not (np.all(rows["fields"] == 3) and np.all(widths)):
        raise ValueError("region postings: a COPY row of unexpected shape")
    return rows
