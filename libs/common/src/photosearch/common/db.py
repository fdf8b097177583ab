"""Postgres: async connection pools (pgvector registered where asked) and a
small forward-only migration runner, one schema history per service."""

import hashlib
from importlib import resources

import psycopg
from pgvector.psycopg import register_vector_async
from psycopg_pool import AsyncConnectionPool

from photosearch.common.logging import get_logger

log = get_logger(__name__)


async def open_pool(
    url: str, *, min_size: int = 1, max_size: int = 10, vector: bool = False
) -> AsyncConnectionPool:
    """Open a pool; with `vector=True` every connection knows the pgvector types."""

    async def configure(conn: psycopg.AsyncConnection) -> None:
        if vector:
            await register_vector_async(conn)
        await conn.set_autocommit(True)

    async def check(conn: psycopg.AsyncConnection) -> None:
        await conn.execute("SELECT 1")

    pool = AsyncConnectionPool(
        url,
        min_size=min_size,
        max_size=max_size,
        open=False,
        configure=configure,
        check=check,
        timeout=5.0,
        reconnect_timeout=0,  # keep trying while Postgres is away
    )
    await pool.open(wait=True, timeout=10.0)
    return pool


async def apply_migrations(url: str, package: str) -> list[str]:
    """Apply the `NNN_name.sql` files of `package` not applied yet, each in its own
    transaction, under an advisory lock so concurrent replicas do it once."""
    files = sorted(
        (f for f in resources.files(package).iterdir() if f.name.endswith(".sql")),
        key=lambda f: f.name,
    )
    lock_id = int.from_bytes(hashlib.sha256(package.encode()).digest()[:8], "big", signed=True)
    applied: list[str] = []
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute("SELECT pg_advisory_lock(%s)", (lock_id,))
        try:
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            cur = await conn.execute("SELECT version FROM schema_migrations")
            done = {row[0] for row in await cur.fetchall()}
            for f in files:
                if f.name in done:
                    continue
                async with conn.transaction():
                    await conn.execute(f.read_text())  # type: ignore[arg-type]
                    await conn.execute(
                        "INSERT INTO schema_migrations (version) VALUES (%s)", (f.name,)
                    )
                applied.append(f.name)
                log.info("migration.applied", package=package, version=f.name)
        finally:
            await conn.execute("SELECT pg_advisory_unlock(%s)", (lock_id,))
    return applied
