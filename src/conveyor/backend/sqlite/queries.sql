-- Named queries of the SQLite engine. Times are bound by the engine from its own clock.

-- name: create_migrations_table
CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at REAL NOT NULL)

-- name: applied_migrations
SELECT name FROM schema_migrations

-- name: record_migration
INSERT INTO schema_migrations (name, applied_at) VALUES (:name, :now)

-- name: get_job
SELECT * FROM jobs WHERE id = :id

-- name: job_step
SELECT step FROM jobs WHERE id = :id

-- name: find_idempotency_key
SELECT job_id, payload_hash, expires_at FROM idempotency_keys WHERE tenant = :tenant AND key = :key

-- name: delete_idempotency_key
DELETE FROM idempotency_keys WHERE tenant = :tenant AND key = :key

-- name: insert_idempotency_key
INSERT INTO idempotency_keys (tenant, key, job_id, payload_hash, expires_at)
VALUES (:tenant, :key, :job_id, :payload_hash, :expires_at)

-- name: count_pending
SELECT count(*) FROM jobs WHERE queue = :queue AND state IN ('waiting', 'scheduled', 'queued')

-- name: insert_job
INSERT INTO jobs (id, task, queue, tenant, args, state, priority, attempts, max_attempts, timeout,
                  retry, run_at, created_at, updated_at, finished_at, error, idempotency_key,
                  depends_on, pending_deps, callback_url, workflow_id, step, on_dependency_failure, quorum,
                  deps_total, deps_succeeded, deps_failed, deps_canceled, trace_context,
                  concurrency_key, concurrency_limit, rate_key, rate_limit, rate_period, unique_key)
VALUES (:id, :task, :queue, :tenant, :args, :state, :priority, 0, :max_attempts, :timeout,
        :retry, :run_at, :now, :now, :finished_at, :error, :idempotency_key,
        :depends_on, :pending_deps, :callback_url, :workflow_id, :step, :on_dependency_failure, :quorum,
        :deps_total, :deps_succeeded, :deps_failed, :deps_canceled, :trace_context,
        :concurrency_key, :concurrency_limit, :rate_key, :rate_limit, :rate_period, :unique_key)

-- name: find_unique_active
-- The pending or running job holding this unique key, if any (enqueue of a unique job).
SELECT * FROM jobs
WHERE tenant = :tenant AND unique_key = :unique_key
  AND state IN ('waiting', 'scheduled', 'queued', 'running')
LIMIT 1

-- name: insert_dep
INSERT OR IGNORE INTO job_deps (depends_on, job_id) VALUES (:depends_on, :job_id)

-- name: insert_event
INSERT INTO job_events (job_id, at, type, state, data) VALUES (:job_id, :now, :type, :state, :data)

-- name: promote_due
UPDATE jobs SET state = 'queued', updated_at = :now
WHERE state = 'scheduled' AND run_at <= :now
RETURNING id

-- name: claim_limited_candidates
-- The claim when limits are in play: the best queued jobs whose concurrency key has a free slot
-- and whose rate key has room in its window (a held-back job is skipped, never blocks the ones
-- behind it). The caller still counts the jobs it takes in this batch (running_for_key,
-- started_in_window) before claiming them with claim_ids.
SELECT id, concurrency_key, concurrency_limit, rate_key, rate_limit, rate_period,
       CASE WHEN concurrency_key IS NULL THEN 0 ELSE (
           SELECT count(*) FROM jobs r WHERE r.state = 'running' AND r.concurrency_key = j.concurrency_key
       ) END AS running_for_key,
       CASE WHEN rate_key IS NULL THEN 0 ELSE (
           SELECT count(*) FROM rate_starts s WHERE s.key = j.rate_key AND s.at > :now - j.rate_period
       ) END AS started_in_window
FROM jobs j
WHERE state = 'queued'
  AND queue IN (SELECT value FROM json_each(:queues))
  AND queue NOT IN (SELECT name FROM queues WHERE paused = 1)
  AND (concurrency_key IS NULL OR running_for_key < concurrency_limit)
  AND (rate_key IS NULL OR started_in_window < rate_limit)
ORDER BY priority DESC, run_at, id
LIMIT :limit

-- name: claim_ids
UPDATE jobs
SET state = 'running', attempts = attempts + 1, lease_token = lower(hex(randomblob(16))),
    lease_expires_at = :now + :lease_seconds, worker_id = :worker_id, started_at = :now,
    updated_at = :now
WHERE state = 'queued' AND id IN (SELECT value FROM json_each(:ids))
RETURNING *

-- name: record_rate_start
INSERT INTO rate_starts (key, at, job_id) VALUES (:key, :now, :job_id)

-- name: forget_old_rate_starts
DELETE FROM rate_starts WHERE key = :key AND at <= :now - :period

-- name: extend_lease
UPDATE jobs SET lease_expires_at = :now + :lease_seconds, updated_at = :now
WHERE id = :id AND lease_token = :token AND state = 'running'

-- name: lease_state
SELECT state FROM jobs WHERE id = :id AND lease_token = :token

-- name: complete
UPDATE jobs
SET state = 'succeeded', result = :result, finished_at = :now, updated_at = :now,
    lease_expires_at = NULL, progress = 1.0, error = NULL
WHERE id = :id AND lease_token = :token AND state = 'running'
RETURNING id

-- name: waiting_dependents
SELECT d.job_id AS id FROM job_deps d JOIN jobs j ON j.id = d.job_id
WHERE d.depends_on = :id AND j.state = 'waiting'
ORDER BY d.job_id

-- name: count_ending
-- One of its dependencies just ended in :state: count it on dependent :id (if still waiting)
-- and return what states.dependent_outcome_counts needs to decide.
UPDATE jobs
SET deps_succeeded = deps_succeeded + (:state = 'succeeded'), deps_failed = deps_failed + (:state = 'failed'),
    deps_canceled = deps_canceled + (:state = 'canceled')
WHERE id = :id AND state = 'waiting'
RETURNING id, on_dependency_failure, quorum, deps_total, deps_succeeded, deps_failed, deps_canceled

-- name: uncount_failure
-- Dependency :id was redriven: it is no longer failed for its waiting dependents.
UPDATE jobs SET deps_failed = deps_failed - 1
WHERE id IN (SELECT job_id FROM job_deps WHERE depends_on = :id) AND state = 'waiting' AND deps_failed > 0

-- name: cancel_dependent
UPDATE jobs
SET state = 'canceled', error = :error, finished_at = :now, updated_at = :now
WHERE id = :id AND state = 'waiting'
RETURNING id

-- name: release_dependent
UPDATE jobs
SET state = CASE WHEN run_at > :now THEN 'scheduled' ELSE 'queued' END,
    run_at = max(run_at, :now), updated_at = :now
WHERE id = :id AND state = 'waiting'
RETURNING state

-- name: fail
-- The caller decided the target (states.after_failure): 'scheduled' (retry at now + delay) or
-- 'failed' (dead letter). Applied only while the job runs under this token (fencing).
UPDATE jobs
SET state = :state, error = :error, updated_at = :now, lease_expires_at = NULL,
    run_at = CASE WHEN :state = 'scheduled' THEN :now + :delay ELSE run_at END,
    finished_at = CASE WHEN :state = 'failed' THEN :now ELSE finished_at END
WHERE id = :id AND lease_token = :token AND state = 'running'
RETURNING id

-- name: release
UPDATE jobs
SET state = 'queued', attempts = max(attempts - 1, 0), lease_expires_at = NULL, updated_at = :now
WHERE id = :id AND lease_token = :token AND state = 'running'

-- name: progress
UPDATE jobs SET progress = :fraction, progress_message = :message, updated_at = :now
WHERE id = :id AND lease_token = :token AND state = 'running'
RETURNING id

-- name: artifacts_of_running
SELECT artifacts FROM jobs WHERE id = :id AND lease_token = :token AND state = 'running'

-- name: set_artifacts
UPDATE jobs SET artifacts = :artifacts, updated_at = :now WHERE id = :id

-- name: cancel
UPDATE jobs
SET state = 'canceled', error = :error, finished_at = :now, updated_at = :now, lease_expires_at = NULL
WHERE id = :id AND state IN ('waiting', 'scheduled', 'queued', 'running')
RETURNING id

-- name: redrive
UPDATE jobs
SET state = 'queued', attempts = 0, run_at = :now, finished_at = NULL, lease_expires_at = NULL,
    lease_token = NULL, worker_id = NULL, updated_at = :now
WHERE id = :id AND state = 'failed'
RETURNING id

-- name: failed_matching
SELECT id FROM jobs
WHERE state = 'failed'
  AND (:tenant IS NULL OR tenant = :tenant)
  AND (:queue IS NULL OR queue = :queue)
  AND (:task IS NULL OR task = :task)

-- name: expired_leases
-- What the reaper needs to decide (conveyor/reaper.py): running jobs whose lease expired.
SELECT id, lease_token, attempts, max_attempts FROM jobs
WHERE state = 'running' AND lease_expires_at < :now
ORDER BY lease_expires_at
LIMIT :limit

-- name: expire
-- Apply the reaper's decision ('queued' or 'failed') only if the job still runs under the same
-- token with an expired lease: a heartbeat or a completion in between wins.
UPDATE jobs
SET state = :state, error = :error, lease_expires_at = NULL, updated_at = :now,
    finished_at = CASE WHEN :state = 'failed' THEN :now ELSE finished_at END
WHERE id = :id AND lease_token = :token AND state = 'running' AND lease_expires_at < :now
RETURNING id

-- name: prunable
-- :queues is a JSON object of per-queue retention seconds replacing :older_than for those queues
SELECT jobs.id FROM jobs LEFT JOIN json_each(:queues) AS r ON r.key = jobs.queue
WHERE jobs.state IN ('succeeded', 'failed', 'canceled') AND jobs.finished_at < :now - coalesce(r.value, :older_than)
LIMIT 5000

-- name: delete_job
DELETE FROM jobs WHERE id = :id

-- name: delete_job_events
DELETE FROM job_events WHERE job_id = :id

-- name: delete_job_effects
DELETE FROM job_effects WHERE job_id = :id

-- name: delete_job_deps
DELETE FROM job_deps WHERE job_id = :id OR depends_on = :id

-- name: delete_job_outbox
DELETE FROM outbox WHERE job_id = :id

-- name: delete_expired_keys
DELETE FROM idempotency_keys WHERE expires_at < :now

-- name: record_effect
-- Fenced: inserts only for the running job with this lease token, and only if the key is new.
INSERT OR IGNORE INTO job_effects (job_id, key, value)
SELECT id, :key, :value FROM jobs WHERE id = :job_id AND lease_token = :token AND state = 'running'

-- name: effect_fence
-- After record_effect inserted nothing (same transaction): a row here means "exists", none "lost".
SELECT 1 FROM jobs WHERE id = :job_id AND lease_token = :token AND state = 'running'

-- name: get_effect
SELECT value FROM job_effects WHERE job_id = :job_id AND key = :key

-- name: events
SELECT * FROM job_events WHERE job_id = :job_id AND seq > :after_seq ORDER BY seq LIMIT :limit

-- name: set_paused
INSERT INTO queues (name, paused) VALUES (:queue, :paused)
ON CONFLICT (name) DO UPDATE SET paused = excluded.paused

-- name: state_counts
SELECT queue, state, count(*) AS n FROM jobs
WHERE (:tenant IS NULL OR tenant = :tenant)
GROUP BY queue, state

-- name: oldest_queued
SELECT queue, min(run_at) AS oldest FROM jobs
WHERE state = 'queued' AND (:tenant IS NULL OR tenant = :tenant)
GROUP BY queue

-- name: paused_queues
SELECT name, paused FROM queues

-- name: queue_position
SELECT count(*) FROM jobs
WHERE state = 'queued' AND queue = :queue
  AND (priority > :priority
       OR (priority = :priority AND (run_at < :run_at OR (run_at = :run_at AND id < :id))))

-- name: finished_since
SELECT count(*) FROM jobs WHERE queue = :queue AND finished_at >= :since

-- name: list_jobs
SELECT * FROM jobs
WHERE (:tenant IS NULL OR tenant = :tenant)
  AND (:queue IS NULL OR queue = :queue)
  AND (:task IS NULL OR task = :task)
  AND (:states IS NULL OR state IN (SELECT value FROM json_each(:states)))
  AND (:workflow IS NULL OR workflow_id = :workflow)
  AND (:cursor IS NULL OR id < :cursor)
ORDER BY id DESC
LIMIT :limit

-- name: insert_api_key
INSERT INTO api_keys (key_id, name, tenant, scopes, secret_hash, created_at, revoked_at)
VALUES (:key_id, :name, :tenant, :scopes, :secret_hash, :created_at, NULL)

-- name: get_api_key
SELECT * FROM api_keys WHERE key_id = :key_id

-- name: find_api_key
SELECT * FROM api_keys WHERE secret_hash = :secret_hash

-- name: list_api_keys
SELECT * FROM api_keys ORDER BY created_at, key_id

-- name: revoke_api_key
UPDATE api_keys SET revoked_at = :now WHERE key_id = :key_id AND revoked_at IS NULL

-- name: take_outbox
-- Lease up to `limit` free entries, oldest first (the trigger of migration 0002 writes them).
UPDATE outbox SET leased_until = :now + :lease_seconds
WHERE seq IN (SELECT seq FROM outbox WHERE leased_until <= :now ORDER BY seq LIMIT :limit)
RETURNING seq, job_id, state, at

-- name: ack_outbox
DELETE FROM outbox WHERE seq IN (SELECT value FROM json_each(:seqs))

-- name: next_due
SELECT min(run_at) AS due FROM jobs
WHERE state = 'scheduled' AND queue IN (SELECT value FROM json_each(:queues))

-- name: beat_worker
INSERT INTO workers (worker_id, info, started_at, last_seen) VALUES (:worker_id, :info, :now, :now)
ON CONFLICT (worker_id) DO UPDATE SET info = excluded.info, last_seen = excluded.last_seen

-- name: list_workers
SELECT worker_id, info, started_at, last_seen, :now - last_seen AS silent_for FROM workers ORDER BY worker_id

-- name: forget_worker
DELETE FROM workers WHERE worker_id = :worker_id

-- name: forget_silent_workers
DELETE FROM workers WHERE last_seen <= :now - :silent_for
-- name: move
-- Overrun move: the running job (under this token) goes back to queued on another queue and
-- gets its attempt back; id, run_at, progress and checkpoint stay. Read the old queue first
-- (running_queue) in the same transaction, for the event.
UPDATE jobs
SET state = 'queued', queue = :queue, attempts = max(attempts - 1, 0), lease_expires_at = NULL, updated_at = :now
WHERE id = :id AND lease_token = :token AND state = 'running'

-- name: running_queue
-- The queue of the job while it runs under this token (nothing when fenced off).
SELECT queue FROM jobs WHERE id = :id AND lease_token = :token AND state = 'running'

-- name: checkpoint
-- ctx.checkpoint: the task's resume state, stored only while this token holds the job.
UPDATE jobs SET checkpoint = :state, updated_at = :now
WHERE id = :id AND lease_token = :token AND state = 'running'
RETURNING id
