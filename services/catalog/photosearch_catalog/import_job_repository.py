"""SQL for import jobs and their entries (import_jobs.py, import_runner.py)."""

from dataclasses import asdict
from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from photosearch_catalog.domain import (
    ClaimedEntry,
    EntryFailure,
    ExternalRef,
    ImportEntry,
    ImportJob,
    ItemFields,
)

_JOB_COLUMNS = (
    "j.id::text, j.source, j.state, j.started_by, j.created_at, j.finished_at,"
    " (SELECT count(*) FROM import_job_entries e WHERE e.job_id = j.id),"
    " (SELECT count(*) FROM import_job_entries e WHERE e.job_id = j.id AND e.state = 'done'),"
    " (SELECT count(*) FROM import_job_entries e WHERE e.job_id = j.id AND e.state = 'failed')"
)


def _fields_json(fields: ItemFields) -> Jsonb:
    return Jsonb(asdict(fields))


def _fields(data: dict[str, Any]) -> ItemFields:
    refs = tuple(ExternalRef(**r) for r in data.get("external_refs", []))
    return ItemFields(**{**data, "tags": tuple(data.get("tags", ())), "external_refs": refs})


def _job(row: Any) -> ImportJob:
    job_id, source, state, started_by, created_at, finished_at = row[:6]
    return ImportJob(
        job_id,
        source,
        state,
        started_by,
        created_at,
        finished_at,
        total=int(row[6]),
        done=int(row[7]),
        failed=int(row[8]),
    )


class ImportJobRepository:
    async def insert_job(
        self,
        conn: AsyncConnection,
        job_id: str,
        source: str,
        update_existing: bool,
        started_by: str,
        entries: list[ImportEntry],
    ) -> None:
        await conn.execute(
            "INSERT INTO import_jobs (id, source, update_existing, started_by)"
            " VALUES (%s, %s, %s, %s)",
            (job_id, source, update_existing, started_by),
        )
        async with conn.cursor() as cur:
            await cur.executemany(
                "INSERT INTO import_job_entries (job_id, position, import_key, location, fields)"
                " VALUES (%s, %s, %s, %s, %s)",
                [
                    (job_id, n, e.import_key, e.location, _fields_json(e.fields))
                    for n, e in enumerate(entries)
                ],
            )

    async def get_job(self, conn: AsyncConnection, job_id: str, failures: int) -> ImportJob | None:
        cur = await conn.execute(
            f"SELECT {_JOB_COLUMNS} FROM import_jobs j WHERE j.id = %s", (job_id,)
        )
        row = await cur.fetchone()
        if row is None:
            return None
        return (await self._with_failures(conn, [_job(row)], failures))[0]

    async def recent_jobs(
        self, conn: AsyncConnection, limit: int, failures: int
    ) -> list[ImportJob]:
        cur = await conn.execute(
            f"SELECT {_JOB_COLUMNS} FROM import_jobs j ORDER BY j.created_at DESC LIMIT %s",
            (limit,),
        )
        jobs = [_job(row) for row in await cur.fetchall()]
        return await self._with_failures(conn, jobs, failures)

    async def _with_failures(
        self, conn: AsyncConnection, jobs: list[ImportJob], limit: int
    ) -> list[ImportJob]:
        """Each job's first `limit` failures, in the job's order (one query for all)."""
        cur = await conn.execute(
            "SELECT job_id::text, location, reason FROM (SELECT job_id, location, reason,"
            " row_number() OVER (PARTITION BY job_id ORDER BY position) AS n"
            " FROM import_job_entries WHERE job_id = ANY(%s::uuid[]) AND state = 'failed') f"
            " WHERE n <= %s ORDER BY job_id, n",
            ([job.id for job in jobs], limit),
        )
        by_job = {job.id: job for job in jobs}
        for job_id, location, reason in await cur.fetchall():
            by_job[job_id].failures.append(EntryFailure(location, reason))
        return jobs

    async def claim(self, conn: AsyncConnection, limit: int) -> list[ClaimedEntry]:
        """The next pending entries of the oldest running job, locked for this transaction
        (other replicas skip them)."""
        cur = await conn.execute(
            "SELECT e.job_id::text, e.position, e.import_key, e.location, e.fields,"
            " j.update_existing FROM import_job_entries e JOIN import_jobs j ON j.id = e.job_id"
            " WHERE e.state = 'pending' AND j.state = 'running'"
            " ORDER BY j.created_at, e.job_id, e.position LIMIT %s FOR UPDATE OF e SKIP LOCKED",
            (limit,),
        )
        return [
            ClaimedEntry(r[0], r[1], ImportEntry(r[2], r[3], _fields(r[4])), r[5])
            for r in await cur.fetchall()
        ]

    async def record(self, conn: AsyncConnection, entry: ClaimedEntry, failure: str | None) -> None:
        await conn.execute(
            "UPDATE import_job_entries SET state = %s, reason = %s"
            " WHERE job_id = %s AND position = %s",
            ("failed" if failure else "done", failure or "", entry.job_id, entry.position),
        )

    async def finish_jobs(self, conn: AsyncConnection) -> list[str]:
        """Running jobs with nothing pending become done; their ids."""
        cur = await conn.execute(
            "UPDATE import_jobs j SET state = 'done', finished_at = now() WHERE j.state = 'running'"
            " AND NOT EXISTS (SELECT 1 FROM import_job_entries e"
            " WHERE e.job_id = j.id AND e.state = 'pending') RETURNING j.id::text"
        )
        return [r[0] for r in await cur.fetchall()]
