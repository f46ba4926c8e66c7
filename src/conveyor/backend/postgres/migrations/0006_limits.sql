-- Limits (conveyor.limits, docs/guide-limits.md): per-key concurrency and start rate, checked
-- by the claim under a per-key advisory lock; unique keys, checked by the enqueue.
ALTER TABLE {schema}.jobs
    ADD COLUMN concurrency_key   text,
    ADD COLUMN concurrency_limit integer,
    ADD COLUMN rate_key          text,
    ADD COLUMN rate_limit        integer,
    ADD COLUMN rate_period       double precision,
    ADD COLUMN unique_key        text;

-- "How many jobs of this key run now": the claim counts these for every limited candidate.
CREATE INDEX jobs_concurrency_running ON {schema}.jobs (concurrency_key)
    WHERE state = 'running' AND concurrency_key IS NOT NULL;
-- "Is a job with this unique key pending or running": the enqueue looks it up.
CREATE INDEX jobs_unique_active ON {schema}.jobs (tenant, unique_key)
    WHERE unique_key IS NOT NULL AND state IN ('waiting', 'scheduled', 'queued', 'running');

-- One row per start of a rate-limited job: the sliding window counts the rows of its key
-- younger than the period; rows older than the period are deleted as the key is used.
CREATE TABLE {schema}.rate_starts (
    key    text NOT NULL,
    at     double precision NOT NULL,
    job_id text NOT NULL
);
CREATE INDEX rate_starts_key ON {schema}.rate_starts (key, at);
