-- Conveyor schema v1 for PostgreSQL. Everything lives in the "conveyor" schema so it can share
-- a database with the application (transactional enqueue) without clashing with its tables.
-- Times are double precision epoch seconds read from the database clock ({schema}.now).

CREATE SCHEMA IF NOT EXISTS {schema};

-- The engine clock plus the test hook offset. A plain SQL function: the planner inlines it.
CREATE OR REPLACE FUNCTION {schema}.now(off double precision) RETURNS double precision
LANGUAGE sql STABLE PARALLEL SAFE AS $$ SELECT extract(epoch FROM now())::double precision + off $$;

CREATE TABLE {schema}.jobs (
    id               text COLLATE "C" PRIMARY KEY,
    task             text NOT NULL,
    queue            text NOT NULL,
    tenant           text NOT NULL,
    args             text NOT NULL,
    state            text NOT NULL
        CHECK (state IN ('waiting', 'scheduled', 'queued', 'running', 'succeeded', 'failed', 'canceled')),
    priority         bigint NOT NULL DEFAULT 0,
    attempts         integer NOT NULL DEFAULT 0,
    max_attempts     integer NOT NULL,
    timeout          double precision,
    retry            text,
    run_at           double precision NOT NULL,
    created_at       double precision NOT NULL,
    updated_at       double precision NOT NULL,
    started_at       double precision,
    finished_at      double precision,
    lease_token      text,
    lease_expires_at double precision,
    worker_id        text,
    progress         double precision,
    progress_message text,
    result           text,
    error            text,
    idempotency_key  text,
    depends_on       text NOT NULL DEFAULT '[]',
    artifacts        text NOT NULL DEFAULT '[]',
    pending_deps     integer NOT NULL DEFAULT 0,
    -- Set (under the dependency's row lock) when a job that waits on this one is enqueued, so
    -- complete knows whether it must release dependents without an extra query.
    has_dependents   boolean NOT NULL DEFAULT false
) WITH (
    -- Every job row is updated 3-4 times in its life: leave room on the page and vacuum early
    -- so dead versions of claimed rows do not pile up in the claim index.
    fillfactor = 85,
    autovacuum_vacuum_scale_factor = 0.01,
    autovacuum_vacuum_insert_scale_factor = 0.05,
    autovacuum_analyze_scale_factor = 0.02
);

-- The claim path and nothing else: only queued jobs are in it, in claim order.
CREATE INDEX jobs_claim ON {schema}.jobs (queue, priority DESC, run_at, id) WHERE state = 'queued';
-- Promotion of due scheduled jobs, the reaper, depth checks, pruning, tenant listings.
CREATE INDEX jobs_due ON {schema}.jobs (run_at) WHERE state = 'scheduled';
CREATE INDEX jobs_leases ON {schema}.jobs (lease_expires_at) WHERE state = 'running';
CREATE INDEX jobs_unready ON {schema}.jobs (queue) WHERE state IN ('waiting', 'scheduled');
CREATE INDEX jobs_finished ON {schema}.jobs (finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX jobs_dead ON {schema}.jobs (queue) WHERE state = 'failed';
CREATE INDEX jobs_tenant ON {schema}.jobs (tenant, id);

CREATE TABLE {schema}.job_deps (
    depends_on text COLLATE "C" NOT NULL,
    job_id     text COLLATE "C" NOT NULL,
    PRIMARY KEY (depends_on, job_id)
);
CREATE INDEX job_deps_job ON {schema}.job_deps (job_id);

CREATE TABLE {schema}.idempotency_keys (
    tenant       text NOT NULL,
    key          text NOT NULL,
    job_id       text COLLATE "C" NOT NULL,
    payload_hash text NOT NULL,
    expires_at   double precision NOT NULL,
    PRIMARY KEY (tenant, key)
);
CREATE INDEX idempotency_keys_expiry ON {schema}.idempotency_keys (expires_at);

CREATE TABLE {schema}.job_events (
    seq    bigint GENERATED ALWAYS AS IDENTITY,
    job_id text COLLATE "C" NOT NULL,
    at     double precision NOT NULL,
    type   text NOT NULL,
    state  text NOT NULL,
    data   text NOT NULL,
    PRIMARY KEY (job_id, seq)
);

CREATE TABLE {schema}.job_effects (
    job_id text COLLATE "C" NOT NULL,
    key    text NOT NULL,
    value  text,
    PRIMARY KEY (job_id, key)
);

CREATE TABLE {schema}.queues (
    name   text PRIMARY KEY,
    paused boolean NOT NULL DEFAULT false
);
