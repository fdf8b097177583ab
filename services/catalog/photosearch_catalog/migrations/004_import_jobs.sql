-- Imports that run inside catalog: a job lists every photo to fetch when it starts, and
-- each entry records how it went, so a restarted replica resumes where the job was.
CREATE TABLE import_jobs (
    id uuid PRIMARY KEY,
    source text NOT NULL,
    started_by text NOT NULL DEFAULT '',
    update_existing boolean NOT NULL DEFAULT false,
    state text NOT NULL DEFAULT 'running' CHECK (state IN ('running', 'done')),
    created_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz
);
CREATE INDEX import_jobs_running ON import_jobs (created_at) WHERE state = 'running';

CREATE TABLE import_job_entries (
    job_id uuid NOT NULL REFERENCES import_jobs (id) ON DELETE CASCADE,
    position integer NOT NULL,
    import_key text NOT NULL,
    -- "https://..." or "s3://bucket/key"
    location text NOT NULL,
    fields jsonb NOT NULL,
    state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'failed')),
    reason text NOT NULL DEFAULT '',
    PRIMARY KEY (job_id, position)
);
CREATE INDEX import_job_entries_pending ON import_job_entries (job_id, position)
    WHERE state = 'pending';
