"""How wide an HNSW search looks: `ef_search` grows with the index. A graph of a million
vectors needs a longer candidate list than one of 100k for the same recall
(docs/benchmarks/search.md: recall@10 0.995 at 100k with 64; at 1M on the default m=16
graph 0.74 with 64 and 0.95 with 200, on an m=24 graph 0.985-0.993 with 64), while a small
catalog should not pay for a wide search."""

import math
import time
from dataclasses import dataclass
from weakref import WeakKeyDictionary

from psycopg import AsyncConnection, sql

MAX_EF_SEARCH = 1000  # pgvector's upper bound
REFRESH_SECONDS = 60.0  # how stale a table's row estimate may be


@dataclass(frozen=True)
class EfSearchPolicy:
    floor: int
    # ef_search at a million vectors, growing with the square root of the index size
    # (about 64 at 100k); 0 keeps it at `floor` whatever the size.
    per_million: int

    def for_rows(self, rows: float) -> int:
        if self.per_million <= 0 or rows <= 0:
            return self.floor
        grown = round(self.per_million * math.sqrt(rows / 1_000_000))
        return min(max(self.floor, grown), MAX_EF_SEARCH)


class EfSearchTracker:
    """The ef_search each model's table wants (from Postgres' row estimate, refreshed
    every minute) and the one each pooled connection has, so that a search sends
    `SET hnsw.ef_search` only when the two differ."""

    def __init__(self, policy: EfSearchPolicy) -> None:
        self.policy = policy
        self._by_table: dict[str, tuple[int, float]] = {}
        self._by_connection: WeakKeyDictionary[AsyncConnection, int] = WeakKeyDictionary()

    def configured(self, conn: AsyncConnection) -> None:
        """`conn` was opened with ef_search at the policy's floor."""
        self._by_connection[conn] = self.policy.floor

    async def apply(self, conn: AsyncConnection, table: str) -> int:
        wanted = await self.wanted(conn, table)
        if self._by_connection.get(conn) != wanted:
            await conn.execute(sql.SQL("SET hnsw.ef_search = {}").format(sql.Literal(wanted)))
            self._by_connection[conn] = wanted
        return wanted

    async def wanted(self, conn: AsyncConnection, table: str) -> int:
        now = time.monotonic()
        cached = self._by_table.get(table)
        if cached is not None and cached[1] > now:
            return cached[0]
        # reltuples: kept by CREATE INDEX, ANALYZE and autovacuum; -1 before the first.
        cur = await conn.execute(
            "SELECT reltuples FROM pg_class WHERE oid = to_regclass(%s)", (table,)
        )
        row = await cur.fetchone()
        rows = float(row[0]) if row is not None and row[0] is not None else 0.0
        wanted = self.policy.for_rows(rows)
        self._by_table[table] = (wanted, now + REFRESH_SECONDS)
        return wanted
