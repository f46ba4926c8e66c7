-- Finished jobs for the "drain with history" benchmark (PostgreSQL engine).
-- Ids sort before every real UUIDv7 (they start with zeros), finish times lie an hour or two
-- back (so the worker's 7-day pruner leaves them alone), and they sit in the bench queue like
-- the jobs of an application that has been running for a while.

-- name: add_history
INSERT INTO conveyor.jobs (
    id, task, queue, tenant, args, state, priority, attempts, max_attempts, retry,
    run_at, created_at, updated_at, started_at, finished_at, worker_id, result
)
SELECT
    '00000000-0000-7000-8000-' || lpad(to_hex(i), 12, '0'),
    'bench.noop', 'bench', 'default', '{}', 'succeeded', 0, 1, 3,
    '{"base_delay": 1.0, "factor": 2.0, "max_delay": 300.0, "jitter": true}',
    t + i * 0.003, t + i * 0.003, t + i * 0.003 + 0.002, t + i * 0.003 + 0.001, t + i * 0.003 + 0.002,
    'history', 'null'
FROM generate_series(1, :n) AS i,
     (SELECT extract(epoch FROM now())::double precision - 7200 AS t) AS clock;

-- name: analyze
VACUUM ANALYZE conveyor.jobs;

-- name: count_finished
SELECT count(*) FROM conveyor.jobs WHERE state = 'succeeded';
