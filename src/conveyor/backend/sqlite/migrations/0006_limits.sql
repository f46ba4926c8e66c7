-- Limits (conveyor.limits, docs/guide-limits.md): per-key concurrency and start rate, checked
-- by the claim; unique keys, checked by the enqueue.
ALTER TABLE jobs ADD COLUMN concurrency_key TEXT;
ALTER TABLE jobs ADD COLUMN concurrency_limit INTEGER;
ALTER TABLE jobs ADD COLUMN rate_key TEXT;
ALTER TABLE jobs ADD COLUMN rate_limit INTEGER;
ALTER TABLE jobs ADD COLUMN rate_period REAL;
ALTER TABLE jobs ADD COLUMN unique_key TEXT;

-- "How many jobs of this key run now": the claim counts these for every limited candidate.
CREATE INDEX IF NOT EXISTS jobs_concurrency_running ON jobs (concurrency_key)
    WHERE state = 'running' AND concurrency_key IS NOT NULL;
-- "Is a job with this unique key pending or running": the enqueue looks it up.
CREATE INDEX IF NOT EXISTS jobs_unique_active ON jobs (tenant, unique_key)
    WHERE unique_key IS NOT NULL AND state IN ('waiting', 'scheduled', 'queued', 'running');

-- One row per start of a rate-limited job: the sliding window counts the rows of its key
-- younger than the period; rows older than the period are deleted as the key is used.
CREATE TABLE IF NOT EXISTS rate_starts (
    key    TEXT NOT NULL,
    at     REAL NOT NULL,
    job_id TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS rate_starts_key ON rate_starts (key, at);
