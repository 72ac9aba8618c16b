-- Durable render jobs. The spec is an opaque serialized vo.pipeline.v1.JobSpec; steps is a
-- JSON object {name: {state, elapsed, checkpoint}} in DAG order.

CREATE TABLE jobs (
    id             TEXT PRIMARY KEY,
    project_id     TEXT NOT NULL REFERENCES projects(id),
    request_id     TEXT NOT NULL DEFAULT '',
    spec           BLOB NOT NULL,
    state          TEXT NOT NULL
                   CHECK (state IN ('QUEUED', 'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELLED')),
    steps          TEXT NOT NULL DEFAULT '{}',
    attempts       INTEGER NOT NULL DEFAULT 0,
    lease_owner    TEXT,
    lease_expires  REAL,
    error          TEXT,                      -- JSON {step, code, message}
    output         TEXT,                      -- JSON {sha256, size_bytes, media_type, uri}
    created_at     REAL NOT NULL,
    updated_at     REAL NOT NULL
);

-- Idempotent creation (AIP-155): one job per (project, request_id); an empty request_id
-- opts out, so the index is partial.
CREATE UNIQUE INDEX jobs_request ON jobs (project_id, request_id) WHERE request_id != '';

-- Claiming takes the oldest QUEUED (or lease-expired RUNNING) job; listing by state too.
CREATE INDEX jobs_state_created ON jobs (state, created_at, id);

-- Listing: newest first, per project or across all, keyset-paginated on (created_at, id).
CREATE INDEX jobs_project_created ON jobs (project_id, created_at, id);
CREATE INDEX jobs_created ON jobs (created_at, id);

-- The last progress event of a job, apart from the job row: it is written several times a
-- second while a job runs, and SQLite rewrites a whole row (spec included) on every update.
CREATE TABLE job_progress (
    job_id      TEXT PRIMARY KEY REFERENCES jobs(id) ON DELETE CASCADE,
    progress    BLOB NOT NULL,                -- serialized vo.common.v1.Progress
    updated_at  REAL NOT NULL
);
