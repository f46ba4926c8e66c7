-- Conveyor schema v1 for SQLite.
CREATE TABLE IF NOT EXISTS jobs (
    id               TEXT PRIMARY KEY,
    task             TEXT NOT NULL,
    queue            TEXT NOT NULL,
    tenant           TEXT NOT NULL,
    args             TEXT NOT NULL,
    state            TEXT NOT NULL,
    priority         INTEGER NOT NULL DEFAULT 0,
    attempts         INTEGER NOT NULL DEFAULT 0,
    max_attempts     INTEGER NOT NULL,
    timeout          REAL,
    retry            TEXT,
    run_at           REAL NOT NULL,
    created_at       REAL NOT NULL,
    updated_at       REAL NOT NULL,
    started_at       REAL,
    finished_at      REAL,
    lease_token      TEXT,
    lease_expires_at REAL,
    worker_id        TEXT,
    progress         REAL,
    progress_message TEXT,
    result           TEXT,
    error            TEXT,
    idempotency_key  TEXT,
    depends_on       TEXT NOT NULL DEFAULT '[]',
    artifacts        TEXT NOT NULL DEFAULT '[]',
    pending_deps     INTEGER NOT NULL DEFAULT 0
);

-- The claim path and nothing else: only queued jobs are in it.
CREATE INDEX IF NOT EXISTS jobs_claim ON jobs (queue, priority DESC, run_at, id) WHERE state = 'queued';
CREATE INDEX IF NOT EXISTS jobs_due ON jobs (run_at) WHERE state = 'scheduled';
CREATE INDEX IF NOT EXISTS jobs_leases ON jobs (lease_expires_at) WHERE state = 'running';
CREATE INDEX IF NOT EXISTS jobs_finished ON jobs (queue, finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state, queue);
CREATE INDEX IF NOT EXISTS jobs_tenant ON jobs (tenant, id);

CREATE TABLE IF NOT EXISTS job_deps (
    depends_on TEXT NOT NULL,
    job_id     TEXT NOT NULL,
    PRIMARY KEY (depends_on, job_id)
);

CREATE TABLE IF NOT EXISTS idempotency_keys (
    tenant       TEXT NOT NULL,
    key          TEXT NOT NULL,
    job_id       TEXT NOT NULL,
    payload_hash TEXT NOT NULL,
    expires_at   REAL NOT NULL,
    PRIMARY KEY (tenant, key)
);

CREATE TABLE IF NOT EXISTS job_events (
    seq    INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL,
    at     REAL NOT NULL,
    type   TEXT NOT NULL,
    state  TEXT NOT NULL,
    data   TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS job_events_job ON job_events (job_id, seq);

CREATE TABLE IF NOT EXISTS job_effects (
    job_id TEXT NOT NULL,
    key    TEXT NOT NULL,
    value  TEXT,
    PRIMARY KEY (job_id, key)
);

CREATE TABLE IF NOT EXISTS queues (
    name   TEXT PRIMARY KEY,
    paused INTEGER NOT NULL DEFAULT 0
);
