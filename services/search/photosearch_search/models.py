"""The models search knows (one vector table and HNSW index each) and the active one."""

import time
from dataclasses import dataclass

from psycopg import AsyncConnection, sql

from photosearch.common.errors import FailedPrecondition, NotFound
from photosearch.common.infra import Infra
from photosearch.common.logging import get_logger
from photosearch_search.domain import Model

log = get_logger(__name__)

ACTIVE_MODEL_KEY = "active_model_id"
# pg_advisory_xact_lock(namespace, key) namespaces used by search.
LOCK_MODELS = 5201


@dataclass(frozen=True)
class IndexParams:
    m: int
    ef_construction: int
    build_memory: str
    parallel_workers: int


def table_ddl(model: Model, params: IndexParams, *, with_ann_index: bool = True) -> sql.Composed:
    """The vector table of one model; item attributes are copied onto each row so that
    filters are plain column predicates the HNSW scan can check as it goes."""
    t = sql.Identifier(model.table)
    statements = [
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {t} ("
            " image_id text NOT NULL, variant text NOT NULL, item_id text NOT NULL,"
            " series text, maker text, tags text[] NOT NULL DEFAULT '{{}}',"
            " embedding vector({dim}) NOT NULL,"
            " updated_at timestamptz NOT NULL DEFAULT now(),"
            " PRIMARY KEY (image_id, variant))"
        ).format(t=t, dim=sql.Literal(model.dim)),
        sql.SQL("CREATE INDEX IF NOT EXISTS {i} ON {t} (item_id)").format(
            i=sql.Identifier(f"{model.table}_item"), t=t
        ),
        sql.SQL("CREATE INDEX IF NOT EXISTS {i} ON {t} (series)").format(
            i=sql.Identifier(f"{model.table}_series"), t=t
        ),
        sql.SQL("CREATE INDEX IF NOT EXISTS {i} ON {t} (maker)").format(
            i=sql.Identifier(f"{model.table}_maker"), t=t
        ),
        sql.SQL("CREATE INDEX IF NOT EXISTS {i} ON {t} USING gin (tags)").format(
            i=sql.Identifier(f"{model.table}_tags"), t=t
        ),
    ]
    if with_ann_index:
        statements.append(ann_index_ddl(model, params))
    return sql.SQL("; ").join(statements)


def ann_index_ddl(
    model: Model, params: IndexParams, *, name: str = "", concurrently: bool = False
) -> sql.Composed:
    return sql.SQL(
        "CREATE INDEX {how} IF NOT EXISTS {i} ON {t} USING hnsw (embedding vector_cosine_ops)"
        " WITH (m = {m}, ef_construction = {efc})"
    ).format(
        how=sql.SQL("CONCURRENTLY" if concurrently else ""),
        i=sql.Identifier(name or f"{model.table}_ann"),
        t=sql.Identifier(model.table),
        m=sql.Literal(params.m),
        efc=sql.Literal(params.ef_construction),
    )


async def set_build_memory(conn: AsyncConnection, params: IndexParams) -> None:
    """HNSW builds are ~4x faster when the graph fits in maintenance_work_mem."""
    await conn.execute(
        "SELECT set_config('maintenance_work_mem', %s, true),"
        " set_config('max_parallel_maintenance_workers', %s, true)",
        (params.build_memory, str(params.parallel_workers)),
    )


class ModelRegistry:
    def __init__(self, infra: Infra, params: IndexParams, active_ttl: float = 1.0) -> None:
        self._infra = infra
        self._params = params
        self._models: dict[str, Model] = {}  # models never change dimension: cache forever
        self._active: tuple[float, str] | None = None
        self._active_ttl = active_ttl

    async def ensure(self, model_id: str, dim: int) -> Model:
        """Register the model (and create its table and index) on first sight."""
        known = await self.get(model_id)
        if known is not None:
            if known.dim != dim:
                raise FailedPrecondition(
                    f"model {model_id!r} makes {known.dim}-d vectors, not {dim}-d"
                )
            return known
        async with self._infra.require_pool().connection() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s, 0)", (LOCK_MODELS,))
            await conn.execute(
                "INSERT INTO models (model_id, dim) VALUES (%s, %s)"
                " ON CONFLICT (model_id) DO NOTHING",
                (model_id, dim),
            )
            cur = await conn.execute("SELECT id, dim FROM models WHERE model_id = %s", (model_id,))
            row = await cur.fetchone()
            assert row is not None
            model = Model(model_id, int(row[1]), int(row[0]))
            if model.dim != dim:
                raise FailedPrecondition(
                    f"model {model_id!r} makes {model.dim}-d vectors, not {dim}-d"
                )
            await set_build_memory(conn, self._params)
            await conn.execute(table_ddl(model, self._params))
        log.info("model.registered", model_id=model_id, dim=dim, table=model.table)
        self._models[model_id] = model
        return model

    async def get(self, model_id: str) -> Model | None:
        if model_id in self._models:
            return self._models[model_id]
        async with self._infra.require_pool().connection() as conn:
            cur = await conn.execute("SELECT id, dim FROM models WHERE model_id = %s", (model_id,))
            row = await cur.fetchone()
        if row is None:
            return None
        model = Model(model_id, int(row[1]), int(row[0]))
        self._models[model_id] = model
        return model

    async def require(self, model_id: str) -> Model:
        model = await self.get(model_id)
        if model is None:
            known = ", ".join(repr(m.model_id) for m in await self.all()) or "none yet"
            raise NotFound(
                f"search has no vectors for model {model_id!r} (known models: {known}); "
                "start an embedder for it and rebuild the index"
            )
        return model

    async def resolve(self, model_id: str) -> Model:
        """The named model, or the active one when the name is empty."""
        if not model_id:
            model_id = await self.active_model_id()
            if not model_id:
                raise FailedPrecondition(
                    "no model is active yet: start an embedder (its model becomes active) "
                    "or set one with SetActiveModel"
                )
            model = await self.get(model_id)
            if model is None:
                raise FailedPrecondition(
                    f"the index of the active model {model_id!r} is still empty: start an "
                    "embedder for it and let it work through the queue"
                )
            return model
        return await self.require(model_id)

    async def all(self) -> list[Model]:
        async with self._infra.require_pool().connection() as conn:
            return await self.all_seen_by(conn)

    async def all_seen_by(self, conn: AsyncConnection) -> list[Model]:
        """Every model, read on the caller's connection. A writer that holds an item's
        lock reads them after taking it: a model registered by a vector that held the
        lock before is then seen, and its table gets the write too."""
        cur = await conn.execute("SELECT model_id, dim, id FROM models ORDER BY id")
        models = [Model(str(r[0]), int(r[1]), int(r[2])) for r in await cur.fetchall()]
        self._models.update({m.model_id: m for m in models})
        return models

    async def active_model_id(self) -> str:
        """'' while no model is active yet (briefly cached: it is read on every query)."""
        now = time.monotonic()
        if self._active is not None and now - self._active[0] < self._active_ttl:
            return self._active[1]
        async with self._infra.require_pool().connection() as conn:
            cur = await conn.execute(
                "SELECT value FROM search_settings WHERE key = %s", (ACTIVE_MODEL_KEY,)
            )
            row = await cur.fetchone()
        value = str(row[0]) if row else ""
        self._active = (now, value)
        return value

    async def set_active(self, model_id: str, *, only_if_unset: bool = False) -> str:
        """Make `model_id` active; with only_if_unset keep whatever is active already.
        Returns the active model afterwards."""
        conflict = "DO NOTHING" if only_if_unset else "DO UPDATE SET value = EXCLUDED.value"
        async with self._infra.require_pool().connection() as conn:
            await conn.execute(
                sql.SQL(
                    "INSERT INTO search_settings (key, value) VALUES (%s, %s)"
                    " ON CONFLICT (key) " + conflict
                ),
                (ACTIVE_MODEL_KEY, model_id),
            )
        self._active = None
        return await self.active_model_id()
