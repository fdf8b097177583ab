"""SQL of local descriptors (table local_descriptors): written beside an image's vectors
in the caller's transaction, read for the candidates of a re-ranked search."""

import time
from collections.abc import Mapping, Sequence

import numpy as np
from psycopg import AsyncConnection

from photosearch.common.local import LocalGrid
from photosearch_search.domain import ImageRef, Model
from photosearch_search.rerank import StoredPhoto

CELL_INDEX = np.dtype("<i2")  # grid indices fit: a grid is at most 64 x 64 cells


def encode_cells(grid: LocalGrid) -> bytes | None:
    """None for a full grid (every cell, in order), else the kept cells' indices."""
    if len(grid) == grid.rows * grid.cols:
        return None
    return grid.index.astype(CELL_INDEX).tobytes()


def decode(rows: int, cols: int, dim: int, cells: bytes | None, codes: bytes) -> LocalGrid:
    index = (
        np.arange(rows * cols, dtype=np.int32)
        if cells is None
        else np.frombuffer(cells, dtype=CELL_INDEX).astype(np.int32)
    )
    return LocalGrid(rows, cols, index, np.frombuffer(codes, dtype=np.int8).reshape(-1, dim))


async def store_local(conn: AsyncConnection, model: Model, ref: ImageRef, grid: LocalGrid) -> str:
    """Replace the image's descriptors of this model (the caller has checked that the
    image is not deleted). '' when stored, else why not: a model's descriptors all have
    the dimension of the first ones stored."""
    # Written once per model (a row lock and a row version per image otherwise).
    await conn.execute(
        "UPDATE models SET local_dim = %s, local_since = now()"
        " WHERE model_id = %s AND local_dim IS NULL",
        (grid.dim, model.model_id),
    )
    cur = await conn.execute("SELECT local_dim FROM models WHERE model_id = %s", (model.model_id,))
    row = await cur.fetchone()
    if row is None or int(row[0]) != grid.dim:
        known = "none" if row is None else f"{int(row[0])}-d"
        return f"{grid.dim}-d local descriptors, but model {model.model_id!r} stores {known}"
    # Postings of the descriptors replaced, if any (the region index gives the new ones
    # theirs on its next pass).
    await conn.execute(
        "DELETE FROM region_postings WHERE model_id = %s AND image_id = %s",
        (model.model_id, ref.image_id),
    )
    await conn.execute(
        "INSERT INTO local_descriptors"
        " (model_id, image_id, item_id, grid_rows, grid_cols, dim, cells, codes)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (model_id, image_id) DO UPDATE SET item_id = EXCLUDED.item_id,"
        " grid_rows = EXCLUDED.grid_rows, grid_cols = EXCLUDED.grid_cols, dim = EXCLUDED.dim,"
        " cells = EXCLUDED.cells, codes = EXCLUDED.codes, updated_at = now()",
        (
            model.model_id,
            ref.image_id,
            ref.item_id,
            grid.rows,
            grid.cols,
            grid.dim,
            encode_cells(grid),
            grid.codes.tobytes(),
        ),
    )
    return ""


async def delete_images(conn: AsyncConnection, image_ids: Sequence[str]) -> None:
    await conn.execute("DELETE FROM local_descriptors WHERE image_id = ANY(%s)", (list(image_ids),))


async def delete_item(conn: AsyncConnection, item_id: str) -> None:
    await conn.execute("DELETE FROM local_descriptors WHERE item_id = %s", (item_id,))


class LocalDescriptorReader:
    """Reads for re-ranking, on the search pool's connections."""

    def __init__(self, photos_per_item: int, unknown_ttl: float = 1.0) -> None:
        self._photos_per_item = photos_per_item
        self._dims: dict[str, int] = {}  # a model's local dimension never changes
        self._unknown: dict[str, float] = {}  # models without descriptors, when last asked
        self._unknown_ttl = unknown_ttl

    async def local_dim(self, conn: AsyncConnection, model: Model) -> int:
        """The model's local dimension; 0 while it has no descriptors stored."""
        if model.model_id in self._dims:
            return self._dims[model.model_id]
        asked = self._unknown.get(model.model_id)
        if asked is not None and time.monotonic() - asked < self._unknown_ttl:
            return 0
        cur = await conn.execute(
            "SELECT local_dim FROM models WHERE model_id = %s", (model.model_id,)
        )
        row = await cur.fetchone()
        if row is None or row[0] is None:
            self._unknown[model.model_id] = time.monotonic()
            return 0
        self._dims[model.model_id] = int(row[0])
        return self._dims[model.model_id]

    async def photos(
        self, conn: AsyncConnection, model: Model, best_images: Mapping[str, str]
    ) -> dict[str, list[StoredPhoto]]:
        """Stored descriptors of the items' photos, one query: per item its best global
        image first, then the others by image id, at most `photos_per_item`."""
        items = list(best_images)
        cur = await conn.execute(
            "SELECT item_id, image_id, grid_rows, grid_cols, dim, cells, codes FROM ("
            " SELECT *, row_number() OVER (PARTITION BY item_id ORDER BY"
            "  image_id = (%(best)s::text[])[array_position(%(items)s::text[], item_id)] DESC,"
            "  image_id) AS place"
            " FROM local_descriptors WHERE model_id = %(model)s AND item_id = ANY(%(items)s)"
            ") ranked WHERE place <= %(per_item)s ORDER BY item_id, place",
            {
                "model": model.model_id,
                "items": items,
                "best": [best_images[i] for i in items],
                "per_item": self._photos_per_item,
            },
            binary=True,  # the codes as raw bytes: text would send them hex-encoded, twice the size
        )
        out: dict[str, list[StoredPhoto]] = {}
        for item_id, image_id, rows, cols, dim, cells, codes in await cur.fetchall():
            grid = decode(int(rows), int(cols), int(dim), cells, codes)
            out.setdefault(str(item_id), []).append(StoredPhoto(str(image_id), grid))
        return out
