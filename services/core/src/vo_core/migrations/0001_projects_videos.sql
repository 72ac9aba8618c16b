-- The base schema: projects group jobs (and pick a shard when scaled out); videos records
-- each finished operation on a project, as the original single-process app did.

CREATE TABLE projects (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL DEFAULT '',
    status      TEXT NOT NULL DEFAULT 'active',
    assets      TEXT NOT NULL DEFAULT '{}',   -- JSON
    created_at  REAL NOT NULL,                -- epoch seconds
    updated_at  REAL NOT NULL
);

CREATE TABLE videos (
    id              TEXT PRIMARY KEY,
    project_id      TEXT NOT NULL REFERENCES projects(id),
    input_path      TEXT,
    output_path     TEXT,
    operation_type  TEXT NOT NULL,            -- 'render', ...
    status          TEXT NOT NULL,            -- 'succeeded', 'failed', 'cancelled'
    result          TEXT NOT NULL DEFAULT '{}',  -- JSON: output artifact or error
    created_at      REAL NOT NULL,
    completed_at    REAL
);

CREATE INDEX videos_project_created ON videos (project_id, created_at);
