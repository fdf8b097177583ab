"""Build a model's HNSW index again, e.g. after changing SEARCH_HNSW_M or
SEARCH_HNSW_EF_CONSTRUCTION, or after a bulk load without one. With --concurrently
(the default) searches and writes go on meanwhile; the new index replaces the old one
in one step at the end.

    python -m photosearch_search.reindex MODEL_ID      # settings from SEARCH_* variables
"""

import argparse
import asyncio
import time

import psycopg
from psycopg import sql

from photosearch.common.entrypoint import load_settings
from photosearch.common.errors import NotFound
from photosearch.common.logging import configure_logging, get_logger
from photosearch_search.config import SearchSettings
from photosearch_search.domain import Model
from photosearch_search.models import IndexParams, ann_index_ddl

log = get_logger(__name__)


async def build_ann_index(
    url: str, model_id: str, params: IndexParams, *, concurrently: bool = True
) -> float:
    """(Re)build the model's HNSW index; returns the seconds the build took."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cur = await conn.execute("SELECT id, dim FROM models WHERE model_id = %s", (model_id,))
        row = await cur.fetchone()
        if row is None:
            raise NotFound(f"search has no model {model_id!r}")
        model = Model(model_id, int(row[1]), int(row[0]))
        # Session settings: CREATE INDEX CONCURRENTLY cannot run inside a transaction.
        await conn.execute(
            sql.SQL("SET maintenance_work_mem = {}").format(sql.Literal(params.build_memory))
        )
        await conn.execute(
            sql.SQL("SET max_parallel_maintenance_workers = {}").format(
                sql.Literal(params.parallel_workers)
            )
        )
        final = f"{model.table}_ann"
        building = f"{model.table}_ann_new"
        await conn.execute(
            sql.SQL("DROP INDEX IF EXISTS {}").format(sql.Identifier(building))
        )  # left over from an interrupted build
        ddl = ann_index_ddl(model, params, name=building, concurrently=concurrently)
        started = time.perf_counter()
        await conn.execute(ddl)
        elapsed = time.perf_counter() - started
        async with conn.transaction():
            await conn.execute(sql.SQL("DROP INDEX IF EXISTS {}").format(sql.Identifier(final)))
            await conn.execute(
                sql.SQL("ALTER INDEX {} RENAME TO {}").format(
                    sql.Identifier(building), sql.Identifier(final)
                )
            )
    log.info("index.built", model_id=model_id, seconds=round(elapsed, 1), params=str(params))
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model_id")
    parser.add_argument("--no-concurrently", dest="concurrently", action="store_false")
    args = parser.parse_args()
    settings = load_settings(SearchSettings, "search reindex")
    configure_logging("search", settings.log_level, settings.log_format)
    params = settings.index_params()
    asyncio.run(
        build_ann_index(
            settings.database_url, args.model_id, params, concurrently=args.concurrently
        )
    )


if __name__ == "__main__":
    main()
