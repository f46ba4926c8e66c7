-- Named queries of the PostgreSQL engine. Every time comparison uses {schema}.now(%(off)s):
-- the database clock plus the backend's clock_offset (a test hook), never the worker's clock.
-- Data-modifying CTEs append the job's history event and NOTIFY in the same statement, so a
-- transition is one round trip and one atomic step.

-- name: create_migrations_table
CREATE SCHEMA IF NOT EXISTS {schema};
CREATE TABLE IF NOT EXISTS {schema}.schema_migrations (
    name       text PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
)

-- name: applied_migrations
SELECT name FROM {schema}.schema_migrations

-- name: record_migration
INSERT INTO {schema}.schema_migrations (name) VALUES (%(name)s)

-- name: lock_migrations
SELECT pg_advisory_lock(%(key)s)

-- name: unlock_migrations
SELECT pg_advisory_unlock(%(key)s)

-- name: open_transaction
SELECT 1

-- name: now
SELECT {schema}.now(%(off)s) AS now

-- name: get_job
SELECT * FROM {schema}.jobs WHERE id = %(id)s

-- name: get_job_for_update
SELECT * FROM {schema}.jobs WHERE id = %(id)s FOR UPDATE

-- name: take_idempotency_key
INSERT INTO {schema}.idempotency_keys AS k (tenant, key, job_id, payload_hash, expires_at)
VALUES (%(tenant)s, %(key)s, %(job_id)s, %(payload_hash)s, {schema}.now(%(off)s) + %(ttl)s)
ON CONFLICT (tenant, key) DO UPDATE
SET job_id = excluded.job_id, payload_hash = excluded.payload_hash, expires_at = excluded.expires_at
WHERE k.expires_at <= {schema}.now(%(off)s)
RETURNING k.job_id

-- name: existing_idempotency_key
SELECT k.job_id AS key_job_id, k.payload_hash AS key_hash, j.*
FROM {schema}.idempotency_keys k LEFT JOIN {schema}.jobs j ON j.id = k.job_id
WHERE k.tenant = %(tenant)s AND k.key = %(key)s

-- name: retake_idempotency_key
UPDATE {schema}.idempotency_keys
SET job_id = %(job_id)s, payload_hash = %(payload_hash)s, expires_at = {schema}.now(%(off)s) + %(ttl)s
WHERE tenant = %(tenant)s AND key = %(key)s

-- name: lock_queue_depth
SELECT pg_advisory_xact_lock(hashtextextended('{schema}.depth:' || %(queue)s, 0))

-- name: count_pending
SELECT (SELECT count(*) FROM (SELECT 1 FROM {schema}.jobs
                              WHERE queue = %(queue)s AND state = 'queued' LIMIT %(cap)s) q)
     + (SELECT count(*) FROM (SELECT 1 FROM {schema}.jobs
                              WHERE queue = %(queue)s AND state IN ('waiting', 'scheduled') LIMIT %(cap)s) u) AS n

-- name: mark_dependencies
UPDATE {schema}.jobs SET has_dependents = true
WHERE id = ANY(%(ids)s::text[]) AND tenant = %(tenant)s
RETURNING id, state, step

-- name: insert_job
WITH t AS (
    SELECT {schema}.now(%(off)s) AS now,
           coalesce(%(run_at)s::float8, {schema}.now(%(off)s) + coalesce(%(delay)s::float8, 0)) AS want
), s AS (
    -- The state comes from states.initial_state (enqueue.py): this only tells due from future.
    SELECT now, want, CASE WHEN want > now THEN %(state_future)s ELSE %(state_due)s END AS state
    FROM t
), ins AS (
    INSERT INTO {schema}.jobs (id, task, queue, tenant, args, state, priority, attempts, max_attempts, timeout,
                               retry, run_at, created_at, updated_at, finished_at, error, idempotency_key,
                               depends_on, pending_deps, callback_url, workflow_id, step, on_dependency_failure,
                               quorum, deps_total, deps_succeeded, deps_failed, deps_canceled, trace_context,
                               concurrency_key, concurrency_limit, rate_key, rate_limit, rate_period, unique_key)
    SELECT %(id)s, %(task)s, %(queue)s, %(tenant)s, %(args)s, s.state, %(priority)s, 0, %(max_attempts)s,
           %(timeout)s, %(retry)s, CASE WHEN s.state = 'queued' THEN least(s.want, s.now) ELSE s.want END,
           s.now, s.now, CASE WHEN s.state = 'canceled' THEN s.now END,
           CASE WHEN s.state = 'canceled' THEN %(error)s::text END,
           %(idempotency_key)s, %(depends_on)s, %(pending_deps)s, %(callback_url)s, %(workflow_id)s, %(step)s,
           %(on_dependency_failure)s, %(quorum)s, %(deps_total)s, %(deps_succeeded)s, %(deps_failed)s,
           %(deps_canceled)s, %(trace_context)s,
           %(concurrency_key)s, %(concurrency_limit)s, %(rate_key)s, %(rate_limit)s, %(rate_period)s, %(unique_key)s
    FROM s
    RETURNING *
), ev AS (
    INSERT INTO {schema}.job_events (job_id, at, type, state, data)
    SELECT id, created_at, 'enqueued', state, json_build_object('queue', queue, 'task', task, 'run_at', run_at)::text
    FROM ins
), nt AS (
    SELECT pg_notify('{schema}', queue) FROM ins WHERE state IN ('queued', 'scheduled')
)
SELECT ins.*, (SELECT count(*) FROM nt) AS notified FROM ins

-- name: insert_deps
INSERT INTO {schema}.job_deps (depends_on, job_id)
SELECT unnest(%(deps)s::text[]), %(job_id)s
ON CONFLICT DO NOTHING

-- name: promote_due
WITH due AS (
    SELECT id FROM {schema}.jobs
    WHERE state = 'scheduled' AND run_at <= {schema}.now(%(off)s)
    ORDER BY run_at
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
), moved AS (
    UPDATE {schema}.jobs j SET state = 'queued', updated_at = {schema}.now(%(off)s)
    FROM due WHERE j.id = due.id
    RETURNING j.id, j.queue, j.updated_at
), ev AS (
    INSERT INTO {schema}.job_events (job_id, at, type, state, data)
    SELECT id, updated_at, 'state', 'queued', '{}' FROM moved
), nt AS (
    SELECT pg_notify('{schema}', queue) FROM (SELECT DISTINCT queue FROM moved) q
)
SELECT (SELECT count(*) FROM moved) AS n, (SELECT count(*) FROM nt) AS notified

-- name: next_due
SELECT min(run_at) - {schema}.now(%(off)s) AS wait FROM {schema}.jobs
WHERE state = 'scheduled' AND queue = ANY(%(queues)s::text[])

-- name: heartbeat
WITH l AS (
    SELECT * FROM unnest(%(ids)s::text[], %(tokens)s::text[]) AS l(id, token)
), ext AS (
    UPDATE {schema}.jobs j
    SET lease_expires_at = {schema}.now(%(off)s) + %(lease)s, updated_at = {schema}.now(%(off)s)
    FROM l WHERE j.id = l.id AND j.lease_token = l.token AND j.state = 'running'
    RETURNING j.id
)
SELECT l.id, ext.id IS NOT NULL AS ok, j.state
FROM l
LEFT JOIN ext ON ext.id = l.id
LEFT JOIN {schema}.jobs j ON j.id = l.id AND j.lease_token = l.token

-- name: lease_states
-- The state of each refused (id, token) pair, read after the heartbeat in a fresh snapshot.
SELECT j.id, j.state FROM unnest(%(ids)s::text[], %(tokens)s::text[]) AS l(id, token)
JOIN {schema}.jobs j ON j.id = l.id AND j.lease_token = l.token

-- name: complete
WITH done AS (
    UPDATE {schema}.jobs
    SET state = 'succeeded', result = %(result)s, finished_at = {schema}.now(%(off)s),
        updated_at = {schema}.now(%(off)s), lease_expires_at = NULL, progress = 1.0, error = NULL
    WHERE id = %(id)s AND lease_token = %(token)s AND state = 'running'
    RETURNING id, finished_at, has_dependents
), ev AS (
    INSERT INTO {schema}.job_events (job_id, at, type, state, data)
    SELECT id, finished_at, 'state', 'succeeded', '{}' FROM done
)
SELECT has_dependents FROM done

-- name: complete_many
-- One statement for a batch of (id, token, result): each row is fenced on its own token, so a
-- stale request just matches nothing. Rows are locked in id order so two batches cannot deadlock.
WITH req AS (
    SELECT * FROM unnest(%(ids)s::text[], %(tokens)s::text[], %(results)s::text[]) AS r(id, token, result)
), locked AS (
    SELECT j.id, req.token, req.result FROM {schema}.jobs j JOIN req ON j.id = req.id AND j.lease_token = req.token
    WHERE j.state = 'running'
    ORDER BY j.id
    FOR UPDATE OF j
), done AS (
    UPDATE {schema}.jobs j
    SET state = 'succeeded', result = locked.result, finished_at = {schema}.now(%(off)s),
        updated_at = {schema}.now(%(off)s), lease_expires_at = NULL, progress = 1.0, error = NULL
    FROM locked
    WHERE j.id = locked.id AND j.lease_token = locked.token AND j.state = 'running'
    RETURNING j.id, j.lease_token AS token, j.finished_at, j.has_dependents
), ev AS (
    INSERT INTO {schema}.job_events (job_id, at, type, state, data)
    SELECT id, finished_at, 'state', 'succeeded', '{}' FROM done ORDER BY id
)
SELECT id, token, has_dependents FROM done

-- name: count_ending
-- One of its dependencies just ended in %(state)s: count it on dependent %(id)s if it still waits
-- (the UPDATE row-locks it: of two parents ending at once the second waits for the first one's
-- commit and counts on top of it) and return what states.dependent_outcome_counts needs.
UPDATE {schema}.jobs j
SET deps_succeeded = j.deps_succeeded + (%(state)s = 'succeeded')::int,
    deps_failed = j.deps_failed + (%(state)s = 'failed')::int,
    deps_canceled = j.deps_canceled + (%(state)s = 'canceled')::int
WHERE j.id = %(id)s AND j.state = 'waiting'
RETURNING j.id, j.on_dependency_failure, j.quorum, j.deps_total, j.deps_succeeded, j.deps_failed, j.deps_canceled

-- name: count_successes
-- Dependencies %(ids)s just succeeded (one complete_many batch): count them on each waiting
-- dependent with ONE update per dependent (a batch of chunks of one fan-in touches its row
-- once, not once per chunk), locked in id order as in count_ending.
WITH ended AS (
    SELECT d.job_id, count(*) AS n FROM {schema}.job_deps d WHERE d.depends_on = ANY(%(ids)s::text[])
    GROUP BY d.job_id
), locked AS (
    SELECT j.id, ended.n FROM {schema}.jobs j JOIN ended ON ended.job_id = j.id
    WHERE j.state = 'waiting'
    ORDER BY j.id
    FOR UPDATE OF j
)
UPDATE {schema}.jobs j SET deps_succeeded = j.deps_succeeded + locked.n
FROM locked WHERE j.id = locked.id AND j.state = 'waiting'
RETURNING j.id, j.on_dependency_failure, j.quorum, j.deps_total, j.deps_succeeded, j.deps_failed, j.deps_canceled

-- name: uncount_failures
-- Dependencies %(ids)s were redriven: they are no longer failed for their waiting dependents.
WITH gone AS (
    SELECT d.job_id, count(*) AS n FROM {schema}.job_deps d WHERE d.depends_on = ANY(%(ids)s::text[])
    GROUP BY d.job_id
), locked AS (
    SELECT j.id, gone.n FROM {schema}.jobs j JOIN gone ON gone.job_id = j.id
    WHERE j.state = 'waiting'
    ORDER BY j.id
    FOR UPDATE OF j
)
UPDATE {schema}.jobs j SET deps_failed = greatest(j.deps_failed - locked.n, 0)
FROM locked WHERE j.id = locked.id

-- name: release_dependent
WITH upd AS (
    UPDATE {schema}.jobs
    SET state = CASE WHEN run_at > {schema}.now(%(off)s) THEN 'scheduled' ELSE 'queued' END,
        run_at = greatest(run_at, {schema}.now(%(off)s)), updated_at = {schema}.now(%(off)s)
    WHERE id = %(id)s AND state = 'waiting'
    RETURNING id, state, queue, updated_at
), ev AS (
    INSERT INTO {schema}.job_events (job_id, at, type, state, data)
    SELECT id, updated_at, 'state', state, '{}' FROM upd
), nt AS (
    SELECT pg_notify('{schema}', queue) FROM upd
)
SELECT id, state, (SELECT count(*) FROM nt) AS notified FROM upd

-- name: cancel_dependent
WITH c AS (
    UPDATE {schema}.jobs
    SET state = 'canceled', error = %(error)s, finished_at = {schema}.now(%(off)s),
        updated_at = {schema}.now(%(off)s)
    WHERE id = %(id)s AND state = 'waiting'
    RETURNING id, updated_at
), ev AS (
    INSERT INTO {schema}.job_events (job_id, at, type, state, data)
    SELECT id, updated_at, 'state', 'canceled', %(data)s FROM c
)
SELECT id FROM c

-- name: job_step
SELECT step FROM {schema}.jobs WHERE id = %(id)s

-- name: fail
-- The caller decided the target (states.after_failure): 'scheduled' (retry at now + delay) or
-- 'failed' (dead letter). Applied only while the job runs under this token (fencing).
WITH f AS (
    UPDATE {schema}.jobs j
    SET state = %(state)s,
        run_at = CASE WHEN %(state)s = 'scheduled' THEN {schema}.now(%(off)s) + %(delay)s::float8 ELSE j.run_at END,
        finished_at = CASE WHEN %(state)s = 'failed' THEN {schema}.now(%(off)s) END,
        error = %(error)s, lease_expires_at = NULL, updated_at = {schema}.now(%(off)s)
    WHERE id = %(id)s AND lease_token = %(token)s AND state = 'running'
    RETURNING j.id, j.state, j.queue, j.updated_at, j.has_dependents
), ev AS (
    INSERT INTO {schema}.job_events (job_id, at, type, state, data)
    SELECT id, updated_at, 'state', state, %(data)s FROM f
), nt AS (
    SELECT pg_notify('{schema}', queue) FROM f WHERE state = 'scheduled'
)
SELECT state, has_dependents, (SELECT count(*) FROM nt) AS notified FROM f

-- name: release
WITH r AS (
    UPDATE {schema}.jobs
    SET state = 'queued', attempts = greatest(attempts - 1, 0), lease_expires_at = NULL,
        updated_at = {schema}.now(%(off)s)
    WHERE id = %(id)s AND lease_token = %(token)s AND state = 'running'
    RETURNING id, queue, updated_at
), ev AS (
    INSERT INTO {schema}.job_events (job_id, at, type, state, data)
    SELECT id, updated_at, 'state', 'queued', '{"reason": "released"}' FROM r
), nt AS (
    SELECT pg_notify('{schema}', queue) FROM r
)
SELECT id, (SELECT count(*) FROM nt) AS notified FROM r

-- name: progress
WITH p AS (
    UPDATE {schema}.jobs SET progress = %(fraction)s, progress_message = %(message)s, updated_at = {schema}.now(%(off)s)
    WHERE id = %(id)s AND lease_token = %(token)s AND state = 'running'
    RETURNING id, updated_at
), ev AS (
    INSERT INTO {schema}.job_events (job_id, at, type, state, data)
    SELECT id, updated_at, 'progress', 'running', %(data)s FROM p
)
SELECT id FROM p

-- name: artifacts_of_running
SELECT artifacts FROM {schema}.jobs
WHERE id = %(id)s AND lease_token = %(token)s AND state = 'running'
FOR UPDATE

-- name: set_artifacts
WITH a AS (
    UPDATE {schema}.jobs SET artifacts = %(artifacts)s, updated_at = {schema}.now(%(off)s)
    WHERE id = %(id)s
    RETURNING id, updated_at
), ev AS (
    INSERT INTO {schema}.job_events (job_id, at, type, state, data)
    SELECT id, updated_at, 'artifact', 'running', %(data)s FROM a
)
SELECT id FROM a

-- name: cancel
WITH c AS (
    UPDATE {schema}.jobs
    SET state = 'canceled', error = %(error)s, finished_at = {schema}.now(%(off)s),
        updated_at = {schema}.now(%(off)s), lease_expires_at = NULL
    WHERE id = %(id)s AND state IN ('waiting', 'scheduled', 'queued', 'running')
    RETURNING id, updated_at
), ev AS (
    INSERT INTO {schema}.job_events (job_id, at, type, state, data)
    SELECT id, updated_at, 'state', 'canceled', %(data)s FROM c
)
SELECT id FROM c

-- name: waiting_dependents
SELECT d.job_id FROM {schema}.job_deps d JOIN {schema}.jobs j ON j.id = d.job_id
WHERE d.depends_on = %(id)s AND j.state = 'waiting'
ORDER BY d.job_id

-- name: redrive_ids
WITH r AS (
    UPDATE {schema}.jobs
    SET state = 'queued', attempts = 0, run_at = {schema}.now(%(off)s), finished_at = NULL,
        lease_expires_at = NULL, lease_token = NULL, worker_id = NULL, updated_at = {schema}.now(%(off)s)
    WHERE id = ANY(%(ids)s::text[]) AND state = 'failed' AND (%(tenant)s::text IS NULL OR tenant = %(tenant)s::text)
    RETURNING id, queue, updated_at, has_dependents
), ev AS (
    INSERT INTO {schema}.job_events (job_id, at, type, state, data)
    SELECT id, updated_at, 'state', 'queued', '{"reason": "redriven"}' FROM r
), nt AS (
    SELECT pg_notify('{schema}', queue) FROM (SELECT DISTINCT queue FROM r) q
)
SELECT (SELECT count(*) FROM r) AS n, (SELECT count(*) FROM nt) AS notified,
       (SELECT array_agg(id) FROM r WHERE has_dependents) AS with_dependents

-- name: redrive_matching
WITH r AS (
    UPDATE {schema}.jobs
    SET state = 'queued', attempts = 0, run_at = {schema}.now(%(off)s), finished_at = NULL,
        lease_expires_at = NULL, lease_token = NULL, worker_id = NULL, updated_at = {schema}.now(%(off)s)
    WHERE state = 'failed'
      AND (%(tenant)s::text IS NULL OR tenant = %(tenant)s::text)
      AND (%(queue)s::text IS NULL OR queue = %(queue)s::text)
      AND (%(task)s::text IS NULL OR task = %(task)s::text)
    RETURNING id, queue, updated_at, has_dependents
), ev AS (
    INSERT INTO {schema}.job_events (job_id, at, type, state, data)
    SELECT id, updated_at, 'state', 'queued', '{"reason": "redriven"}' FROM r
), nt AS (
    SELECT pg_notify('{schema}', queue) FROM (SELECT DISTINCT queue FROM r) q
)
SELECT (SELECT count(*) FROM r) AS n, (SELECT count(*) FROM nt) AS notified,
       (SELECT array_agg(id) FROM r WHERE has_dependents) AS with_dependents

-- name: expired_leases
-- What the reaper needs to decide (conveyor/reaper.py): running jobs whose lease expired.
SELECT id, lease_token, attempts, max_attempts FROM {schema}.jobs
WHERE state = 'running' AND lease_expires_at < {schema}.now(%(off)s)
ORDER BY lease_expires_at
LIMIT %(limit)s

-- name: expire
-- Apply the reaper's decisions ('queued' or 'failed'), each only if the job still runs under the
-- same token with an expired lease (a heartbeat or completion in between wins). Rows are locked
-- in id order so two reapers cannot deadlock; SKIP LOCKED leaves a job another reaper or its
-- worker is changing right now to the next round.
WITH d AS (
    SELECT * FROM unnest(%(ids)s::text[], %(tokens)s::text[], %(states)s::text[], %(errors)s::text[])
        AS d(id, token, state, error)
), locked AS (
    SELECT j.id, d.state, d.error FROM {schema}.jobs j JOIN d ON j.id = d.id AND j.lease_token = d.token
    WHERE j.state = 'running' AND j.lease_expires_at < {schema}.now(%(off)s)
    ORDER BY j.id
    FOR UPDATE OF j SKIP LOCKED
), r AS (
    UPDATE {schema}.jobs j
    SET state = locked.state, error = locked.error,
        finished_at = CASE WHEN locked.state = 'failed' THEN {schema}.now(%(off)s) ELSE j.finished_at END,
        lease_expires_at = NULL, updated_at = {schema}.now(%(off)s)
    FROM locked WHERE j.id = locked.id
    RETURNING j.id, j.state, j.queue, j.error, j.updated_at, j.has_dependents
), ev AS (
    INSERT INTO {schema}.job_events (job_id, at, type, state, data)
    SELECT id, updated_at, 'state', state, json_build_object('error', error::json)::text FROM r ORDER BY id
), nt AS (
    SELECT pg_notify('{schema}', queue) FROM (SELECT DISTINCT queue FROM r WHERE state = 'queued') q
)
SELECT id, state, has_dependents, (SELECT count(*) FROM nt) AS notified FROM r ORDER BY id

-- name: prune_batch
-- %(queues)s is a JSON object of per-queue retention seconds replacing %(older_than)s for those queues
WITH keep AS (
    SELECT key AS queue, value::float8 AS seconds FROM jsonb_each_text(%(queues)s::jsonb)
), victims AS (
    SELECT j.id FROM {schema}.jobs j LEFT JOIN keep ON keep.queue = j.queue
    WHERE j.finished_at < {schema}.now(%(off)s) - coalesce(keep.seconds, %(older_than)s)
      AND j.state IN ('succeeded', 'failed', 'canceled')
    ORDER BY j.finished_at
    LIMIT %(limit)s
    FOR UPDATE OF j SKIP LOCKED
), e AS (
    DELETE FROM {schema}.job_events WHERE job_id IN (SELECT id FROM victims)
), f AS (
    DELETE FROM {schema}.job_effects WHERE job_id IN (SELECT id FROM victims)
), d AS (
    DELETE FROM {schema}.job_deps
    WHERE job_id IN (SELECT id FROM victims) OR depends_on IN (SELECT id FROM victims)
), o AS (
    DELETE FROM {schema}.outbox WHERE job_id IN (SELECT id FROM victims)
), gone AS (
    DELETE FROM {schema}.jobs WHERE id IN (SELECT id FROM victims)
    RETURNING id
)
SELECT count(*) AS n FROM gone

-- name: delete_expired_keys
DELETE FROM {schema}.idempotency_keys WHERE expires_at < {schema}.now(%(off)s)

-- name: record_effect
-- Fenced like progress: only the running job with this lease token records, and only a new key.
-- FOR SHARE holds the job row until commit, so a reap or takeover cannot slip in between the
-- check and the insert (it waits, or we see its new state and record nothing).
WITH owner AS (
    SELECT id FROM {schema}.jobs
    WHERE id = %(job_id)s AND lease_token = %(token)s AND state = 'running'
    FOR SHARE
), ins AS (
    INSERT INTO {schema}.job_effects (job_id, key, value)
    SELECT id, %(key)s, %(value)s FROM owner
    ON CONFLICT DO NOTHING
    RETURNING 1
)
SELECT EXISTS (SELECT 1 FROM owner) AS owned, EXISTS (SELECT 1 FROM ins) AS recorded

-- name: get_effect
SELECT value FROM {schema}.job_effects WHERE job_id = %(job_id)s AND key = %(key)s

-- name: events
SELECT seq, job_id, at, type, state, data FROM {schema}.job_events
WHERE job_id = %(job_id)s AND seq > %(after_seq)s
ORDER BY seq
LIMIT %(limit)s

-- name: set_paused
WITH u AS (
    INSERT INTO {schema}.queues (name, paused) VALUES (%(queue)s, %(paused)s)
    ON CONFLICT (name) DO UPDATE SET paused = excluded.paused
    RETURNING name, paused
), nt AS (
    SELECT pg_notify('{schema}', name) FROM u WHERE NOT paused
)
SELECT (SELECT count(*) FROM nt) AS notified

-- name: state_counts
SELECT queue, state, count(*) AS n FROM {schema}.jobs
WHERE (%(tenant)s::text IS NULL OR tenant = %(tenant)s::text)
GROUP BY queue, state

-- name: oldest_queued
SELECT queue, min(run_at) AS oldest FROM {schema}.jobs
WHERE state = 'queued' AND (%(tenant)s::text IS NULL OR tenant = %(tenant)s::text)
GROUP BY queue

-- name: paused_queues
SELECT name, paused FROM {schema}.queues

-- name: queue_position
SELECT count(*) AS n FROM {schema}.jobs
WHERE state = 'queued' AND queue = %(queue)s
  AND (priority > %(priority)s
       OR (priority = %(priority)s AND (run_at < %(run_at)s OR (run_at = %(run_at)s AND id < %(id)s))))

-- name: finished_since
SELECT count(*) AS n FROM {schema}.jobs
WHERE finished_at >= {schema}.now(%(off)s) - %(window)s AND queue = %(queue)s

-- name: list_jobs
SELECT * FROM {schema}.jobs
WHERE (%(tenant)s::text IS NULL OR tenant = %(tenant)s::text)
  AND (%(queue)s::text IS NULL OR queue = %(queue)s::text)
  AND (%(task)s::text IS NULL OR task = %(task)s::text)
  AND (%(states)s::text[] IS NULL OR state = ANY(%(states)s::text[]))
  AND (%(workflow)s::text IS NULL OR workflow_id = %(workflow)s::text)
  AND (%(cursor)s::text IS NULL OR id < %(cursor)s::text)
ORDER BY id DESC
LIMIT %(limit)s

-- name: insert_jobs
-- The bulk enqueue of plain jobs (no key, dependency or depth limit): every row, its
-- 'enqueued' event and one NOTIFY per queue in one statement. The jobs come as one JSON array
-- (encoding it is far cheaper than adapting a dozen array parameters); args and retry are JSON
-- strings inside it, stored verbatim. Rows and events are written in request order (ord), so
-- event seqs follow the batch as the one-by-one path would; the reply is what the database
-- decided (state, run_at, created_at), in request order.
WITH s AS MATERIALIZED (
    SELECT u.*, t.now, t.want,
           CASE WHEN t.want > t.now THEN %(state_future)s ELSE %(state_due)s END AS state,
           CASE WHEN t.want > t.now THEN t.want ELSE least(t.want, t.now) END AS stored_run_at
    FROM ROWS FROM (
        json_to_recordset(%(jobs)s::json) AS (id text, task text, queue text, tenant text, args text, priority bigint,
                                              max_attempts int, timeout float8, retry text, run_at float8, delay float8,
                                              workflow_id text, step text, on_dependency_failure text, quorum int)
    ) WITH ORDINALITY AS u(id, task, queue, tenant, args, priority, max_attempts, timeout, retry, run_at, delay,
                           workflow_id, step, on_dependency_failure, quorum, ord)
    CROSS JOIN LATERAL (
        SELECT {schema}.now(%(off)s) AS now,
               coalesce(u.run_at, {schema}.now(%(off)s) + coalesce(u.delay, 0)) AS want
    ) t
), ins AS (
    INSERT INTO {schema}.jobs (id, task, queue, tenant, args, state, priority, attempts, max_attempts, timeout,
                               retry, run_at, created_at, updated_at, depends_on, pending_deps, workflow_id, step,
                               on_dependency_failure, quorum)
    SELECT id, task, queue, tenant, args, state, priority, 0, max_attempts, timeout, retry, stored_run_at,
           now, now, '[]', 0, workflow_id, step, on_dependency_failure, quorum
    FROM s ORDER BY ord
), ev AS (
    INSERT INTO {schema}.job_events (job_id, at, type, state, data)
    SELECT id, now, 'enqueued', state, json_build_object('queue', queue, 'task', task, 'run_at', stored_run_at)::text
    FROM s ORDER BY ord
), nt AS (
    SELECT pg_notify('{schema}', q.queue) FROM (SELECT DISTINCT queue FROM s WHERE state IN ('queued', 'scheduled')) q
)
SELECT id, state, stored_run_at AS run_at, now AS created_at, (SELECT count(*) FROM nt) AS notified
FROM s ORDER BY ord

-- name: insert_api_key
INSERT INTO {schema}.api_keys (key_id, name, tenant, scopes, secret_hash, created_at, revoked_at)
VALUES (%(key_id)s, %(name)s, %(tenant)s, %(scopes)s, %(secret_hash)s, {schema}.now(%(off)s), NULL)
ON CONFLICT DO NOTHING
RETURNING *

-- name: find_api_key
SELECT * FROM {schema}.api_keys WHERE secret_hash = %(secret_hash)s

-- name: list_api_keys
SELECT * FROM {schema}.api_keys ORDER BY created_at, key_id

-- name: revoke_api_key
UPDATE {schema}.api_keys SET revoked_at = {schema}.now(%(off)s)
WHERE key_id = %(key_id)s AND revoked_at IS NULL

-- name: take_outbox
-- Lease up to `limit` free entries, oldest first (the trigger of migration 0002 writes them);
-- SKIP LOCKED lets concurrent takers share the backlog instead of queueing behind each other.
WITH picked AS (
    SELECT seq FROM {schema}.outbox
    WHERE leased_until <= {schema}.now(%(off)s)
    ORDER BY seq
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
UPDATE {schema}.outbox o SET leased_until = {schema}.now(%(off)s) + %(lease_seconds)s
FROM picked WHERE o.seq = picked.seq
RETURNING o.seq, o.job_id, o.state, o.at

-- name: ack_outbox
DELETE FROM {schema}.outbox WHERE seq = ANY(%(seqs)s::bigint[])

-- name: beat_worker
INSERT INTO {schema}.workers (worker_id, info, started_at, last_seen)
VALUES (%(worker_id)s, %(info)s, {schema}.now(%(off)s), {schema}.now(%(off)s))
ON CONFLICT (worker_id) DO UPDATE SET info = excluded.info, last_seen = excluded.last_seen

-- name: list_workers
SELECT worker_id, info, started_at, last_seen, {schema}.now(%(off)s) - last_seen AS silent_for
FROM {schema}.workers ORDER BY worker_id

-- name: forget_worker
DELETE FROM {schema}.workers WHERE worker_id = %(worker_id)s

-- name: forget_silent_workers
DELETE FROM {schema}.workers WHERE last_seen <= {schema}.now(%(off)s) - %(silent_for)s

-- name: lock_unique_key
-- Serialise enqueues of one (tenant, unique key) until commit: a concurrent duplicate waits,
-- then finds the job this transaction made.
SELECT pg_advisory_xact_lock(hashtextextended('{schema}:unique:' || %(tenant)s || ':' || %(unique_key)s, 0)) AS locked

-- name: find_unique_active
SELECT * FROM {schema}.jobs
WHERE tenant = %(tenant)s AND unique_key = %(unique_key)s
  AND state IN ('waiting', 'scheduled', 'queued', 'running')
LIMIT 1

-- name: claim_limited_candidates
-- The best queued jobs of the queues whose concurrency key has a free slot and whose rate key
-- has room in its window, as this statement's snapshot sees it (held-back jobs are skipped,
-- never block the ones behind them). Row-locked; the counts of limited candidates are read
-- again under the keys' advisory locks (lock_limit_keys) before any is claimed.
WITH q AS (
    SELECT name FROM unnest(%(queues)s::text[]) AS u(name)
    WHERE NOT EXISTS (SELECT 1 FROM {schema}.queues p WHERE p.name = u.name AND p.paused)
)
SELECT c.* FROM q
CROSS JOIN LATERAL (
    SELECT j.id, j.priority, j.run_at, j.concurrency_key, j.concurrency_limit, j.rate_key, j.rate_limit, j.rate_period
    FROM {schema}.jobs j
    WHERE j.state = 'queued' AND j.queue = q.name AND NOT (j.id = ANY(%(skip)s::text[]))
      AND (j.concurrency_key IS NULL OR (
          SELECT count(*) FROM {schema}.jobs r WHERE r.state = 'running' AND r.concurrency_key = j.concurrency_key
      ) < j.concurrency_limit)
      AND (j.rate_key IS NULL OR (
          SELECT count(*) FROM {schema}.rate_starts s
          WHERE s.key = j.rate_key AND s.at > {schema}.now(%(off)s) - j.rate_period
      ) < j.rate_limit)
    ORDER BY j.priority DESC, j.run_at, j.id
    LIMIT %(limit)s
    FOR UPDATE OF j SKIP LOCKED
) c
ORDER BY c.priority DESC, c.run_at, c.id
LIMIT %(limit)s

-- name: lock_limit_keys
-- One transaction-scoped advisory lock per limit key, in a fixed order (no deadlock between
-- claimers): whoever holds a key's lock counts and claims for it alone until commit.
SELECT count(pg_advisory_xact_lock(hashtextextended('{schema}:limit:' || k, 0)))
FROM (SELECT k FROM unnest(%(keys)s::text[]) AS u(k) ORDER BY k) ks

-- name: running_per_key
SELECT concurrency_key AS key, count(*) AS n FROM {schema}.jobs
WHERE state = 'running' AND concurrency_key = ANY(%(keys)s::text[])
GROUP BY concurrency_key

-- name: recent_starts
SELECT key, {schema}.now(%(off)s) - at AS age FROM {schema}.rate_starts
WHERE key = ANY(%(keys)s::text[]) AND at > {schema}.now(%(off)s) - %(period)s

-- name: claim_ids
WITH claimed AS (
    UPDATE {schema}.jobs j
    SET state = 'running', attempts = j.attempts + 1,
        lease_token = replace(gen_random_uuid()::text, '-', ''),
        lease_expires_at = {schema}.now(%(off)s) + %(lease)s,
        worker_id = %(worker_id)s, started_at = {schema}.now(%(off)s), updated_at = {schema}.now(%(off)s)
    WHERE j.id = ANY(%(ids)s::text[]) AND j.state = 'queued'
    RETURNING j.*
), ev AS (
    INSERT INTO {schema}.job_events (job_id, at, type, state, data)
    SELECT id, started_at, 'state', 'running', json_build_object('attempt', attempts, 'worker', worker_id)::text
    FROM claimed
)
SELECT * FROM claimed

-- name: record_rate_starts
-- The starts of this claim for each rate key, after forgetting the key's starts older than
-- its period (keys, periods and ids are parallel arrays, one entry per job started).
WITH u AS (
    SELECT * FROM unnest(%(keys)s::text[], %(periods)s::float8[], %(ids)s::text[]) AS u(key, period, job_id)
), old AS (
    DELETE FROM {schema}.rate_starts s USING u
    WHERE s.key = u.key AND s.at <= {schema}.now(%(off)s) - u.period
)
INSERT INTO {schema}.rate_starts (key, at, job_id)
SELECT key, {schema}.now(%(off)s), job_id FROM u

-- name: try_lock_limit_keys
-- The later rounds of a claim take only the key locks that are free (taking them in a new
-- order while holding others could deadlock); the keys answered are now held.
SELECT k AS key FROM unnest(%(keys)s::text[]) AS u(k)
WHERE pg_try_advisory_xact_lock(hashtextextended('{schema}:limit:' || k, 0))
-- name: move
-- Overrun move: the running job (under this token) goes back to queued on another queue and
-- gets its attempt back; id, run_at, progress and checkpoint stay. The event names both queues;
-- the NOTIFY wakes the overflow queue's workers.
WITH o AS (
    SELECT id, queue AS old_queue FROM {schema}.jobs WHERE id = %(id)s
), m AS (
    UPDATE {schema}.jobs j
    SET state = 'queued', queue = %(queue)s, attempts = greatest(j.attempts - 1, 0), lease_expires_at = NULL,
        updated_at = {schema}.now(%(off)s)
    FROM o
    WHERE j.id = o.id AND j.lease_token = %(token)s AND j.state = 'running'
    RETURNING j.id, j.queue, o.old_queue, j.updated_at
), ev AS (
    INSERT INTO {schema}.job_events (job_id, at, type, state, data)
    SELECT id, updated_at, 'state', 'queued', json_build_object('reason', 'moved', 'from', old_queue, 'to', queue)::text
    FROM m
), nt AS (
    SELECT pg_notify('{schema}', queue) FROM m
)
SELECT id, (SELECT count(*) FROM nt) AS notified FROM m

-- name: checkpoint
-- ctx.checkpoint: the task's resume state, stored only while this token holds the job.
UPDATE {schema}.jobs SET checkpoint = %(state)s, updated_at = {schema}.now(%(off)s)
WHERE id = %(id)s AND lease_token = %(token)s AND state = 'running'
RETURNING id
