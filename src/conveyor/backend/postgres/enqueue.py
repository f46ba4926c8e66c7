"""Enqueue as a sequence of SQL steps, run by the engine's pool or on the caller's connection.

The steps are a generator that yields ``(sql, params)`` and receives the rows of each
statement, so one implementation of the enqueue rules (idempotency, depth limit, dependencies)
serves the backend's async pool, and the application's own sync or async psycopg connection
for transactional enqueue. The generator never commits: whoever drives it owns the transaction.

Plain requests (no key, dependency or depth limit; ``is_plain``) read nothing before writing,
so ``enqueue_many`` stores a run of them with one ``insert_jobs`` statement instead: the same
rows, events and wake-ups as the steps would write one by one, in one round trip.
"""

from __future__ import annotations

import math
from collections.abc import Generator, Mapping, Sequence
from typing import Any

from psycopg import AsyncConnection, Connection
from psycopg.rows import dict_row

from conveyor import serde, states
from conveyor.backend.limits import has_limits, limit_columns
from conveyor.backend.postgres.rows import Row, row_to_job
from conveyor.backend.protocol import EnqueueRequest, EnqueueResult
from conveyor.errors import DependencyError, IdempotencyConflict, QueueFull
from conveyor.records import job_from_record
from conveyor.types import JobState, RetryPolicy, new_job_id

# (query name, params, returns_rows): whether to fetch is known up front, as a pipelined
# connection only learns the shape of a result after it is received. Steps name queries; the
# runner resolves them in its schema's queries (``sql``), so the steps know nothing of schemas.
Step = tuple[str, dict[str, Any], bool]
Steps = Generator[Step, list[Row], EnqueueResult]


def enqueue_steps(req: EnqueueRequest, offset: float) -> Steps:
    """The statements of one enqueue; raises the Conveyor error that refuses it."""
    digest = serde.payload_hash(req.task, req.args)
    job_id = req.job_id or new_job_id()
    if req.idempotency_key is not None:
        key = {
            "tenant": req.tenant,
            "key": req.idempotency_key,
            "job_id": job_id,
            "payload_hash": digest,
            "ttl": req.idempotency_ttl,
            "off": offset,
        }
        # Inserting the key first makes a concurrent duplicate wait for our commit (unique index)
        # and then see our key: two submits with one key never make two jobs.
        taken = yield "take_idempotency_key", key, True
        if not taken:
            found = (yield "existing_idempotency_key", key, True)[0]
            if found["key_hash"] != digest:
                raise IdempotencyConflict(
                    f"idempotency key {req.idempotency_key!r} was used for a different payload",
                    found["key_job_id"],
                )
            if found["id"] is not None:
                return EnqueueResult(row_to_job(found), created=False)
            # The job was pruned while its key was still valid: the key now names the new job.
            yield "retake_idempotency_key", key, False
    if req.unique_key is not None:
        unique = {"tenant": req.tenant, "unique_key": req.unique_key}
        yield "lock_unique_key", unique, True
        holder = yield "find_unique_active", unique, True
        if holder:
            return EnqueueResult(row_to_job(holder[0]), created=False)
    if req.max_depth is not None:
        # Serialise enqueues of this queue only, so two submits cannot both take the last slot.
        yield "lock_queue_depth", {"queue": req.queue}, True
        depth = (yield "count_pending", {"queue": req.queue, "cap": req.max_depth}, True)[0]["n"]
        if depth >= req.max_depth:
            raise QueueFull(req.queue, depth, req.max_depth)

    deps = list(dict.fromkeys(req.depends_on))
    dep_states: list[tuple[str, JobState | None]] = []
    error: dict[str, str] | None = None
    by_id: dict[str, Row] = {}
    if deps:
        # Row-locks each dependency (and flags it), so its completion waits for this commit
        # and then sees the new dependent: a dependent can never be left waiting forever.
        rows = yield "mark_dependencies", {"ids": deps, "tenant": req.tenant}, True
        by_id = {r["id"]: r for r in rows}
        for dep in deps:
            if dep not in by_id:
                raise DependencyError(f"dependency {dep!r} does not exist")
            dep_states.append((dep, JobState(by_id[dep]["state"])))
    outcome = states.dependent_outcome(req.on_dependency_failure, req.quorum, [st for _, st in dep_states])
    if outcome is states.DependentOutcome.CANCEL:
        lost = states.first_lost(req.on_dependency_failure, dep_states) or deps[0]
        error = states.dependency_failed_error(lost, by_id[lost]["step"], JobState(by_id[lost]["state"]))
    # Every dependency that may still change is linked, a failed one too (a redrive may bring
    # it back); a succeeded or canceled one never changes again.
    linked = [d for d, st in dep_states if st not in (JobState.SUCCEEDED, JobState.CANCELED)] if error is None else []

    canceled = outcome is states.DependentOutcome.CANCEL
    pending = int(outcome is states.DependentOutcome.WAIT)
    params = {
        "off": offset,
        "state_due": states.initial_state(
            canceled_dependency=canceled, unfinished_dependencies=pending, due=True
        ).value,
        "state_future": states.initial_state(
            canceled_dependency=canceled, unfinished_dependencies=pending, due=False
        ).value,
        "id": job_id,
        "task": req.task,
        "queue": req.queue,
        "tenant": req.tenant,
        "args": serde.dumps(req.args),
        "priority": req.priority,
        "max_attempts": req.max_attempts,
        "timeout": req.timeout,
        "retry": serde.dumps(req.retry.to_dict()),
        "run_at": req.run_at,
        "delay": req.delay,
        "error": serde.dumps(error) if error else None,
        "pending_deps": len(linked),
        "deps_total": len(deps),
        **{f"deps_{state.value}": n for state, n in states.ended_counts([st for _, st in dep_states]).items()},
        "idempotency_key": req.idempotency_key,
        "depends_on": serde.dumps(deps),
        "callback_url": req.callback_url,
        "workflow_id": req.workflow_id,
        "step": req.step,
        "on_dependency_failure": req.on_dependency_failure.value,
        "quorum": req.quorum,
        "trace_context": None if req.trace_context is None else serde.dumps(req.trace_context),
        **limit_columns(req),
    }
    row = (yield "insert_job", params, True)[0]
    if linked:
        yield "insert_deps", {"deps": linked, "job_id": job_id}, False
    return EnqueueResult(row_to_job(row), created=True)


PLAIN_STATES = {
    "state_due": states.initial_state(canceled_dependency=False, unfinished_dependencies=0, due=True).value,
    "state_future": states.initial_state(canceled_dependency=False, unfinished_dependencies=0, due=False).value,
}
"""The initial states of a job without dependencies, due now or later (the batch insert's choice)."""


def is_plain(req: EnqueueRequest) -> bool:
    """No idempotency key, dependency or depth limit: the job is one row written without reading
    anything first, so a batch of them can be inserted by one statement (``insert_batch_step``).
    Non-finite times (JSON has no inf/nan) keep the one-by-one path, which stores them as given."""
    return (
        req.idempotency_key is None
        and req.max_depth is None
        and not req.depends_on
        and req.callback_url is None
        and req.trace_context is None
        and not has_limits(req)
        and all(v is None or math.isfinite(v) for v in (req.timeout, req.run_at, req.delay))
    )


def insert_batch_step(reqs: Sequence[EnqueueRequest], offset: float) -> tuple[list[dict[str, Any]], Step]:
    """The rows to store (in request order) and the one ``insert_jobs`` statement that stores
    them, their 'enqueued' events and one NOTIFY per queue, as ``enqueue_steps`` would one by one."""
    retries: dict[RetryPolicy, str] = {}
    jobs: list[dict[str, Any]] = []
    for req in reqs:
        retry = retries.get(req.retry)
        if retry is None:
            retry = retries[req.retry] = serde.dumps(req.retry.to_dict())
        jobs.append(
            {
                "id": req.job_id or new_job_id(),
                "task": req.task,
                "queue": req.queue,
                "tenant": req.tenant,
                "args": serde.dumps(req.args),
                "priority": req.priority,
                "max_attempts": req.max_attempts,
                "timeout": req.timeout,
                "retry": retry,
                "run_at": req.run_at,
                "delay": req.delay,
                "workflow_id": req.workflow_id,
                "step": req.step,
                "on_dependency_failure": req.on_dependency_failure.value,
                "quorum": req.quorum,
            }
        )
    return jobs, ("insert_jobs", {"off": offset, "jobs": serde.dumps(jobs), **PLAIN_STATES}, True)


def batch_results(jobs: list[dict[str, Any]], rows: list[Row]) -> list[EnqueueResult]:
    """The stored jobs, built from what was sent plus what the database decided (state and
    times, one row per job in request order): the same Job that reading the row back gives,
    without shipping every column back."""
    results: list[EnqueueResult] = []
    for job, row in zip(jobs, rows, strict=True):
        assert row["id"] == job["id"]
        record = {**job, **row, "updated_at": row["created_at"]}
        results.append(EnqueueResult(job_from_record(record, encoded=True), created=True))
    return results


async def insert_batch_async(
    conn: AsyncConnection[Any], reqs: Sequence[EnqueueRequest], offset: float, sql: Mapping[str, str]
) -> list[EnqueueResult]:
    """Store plain requests with one statement, inside whatever transaction ``conn`` is in."""
    jobs, (name, params, _) = insert_batch_step(reqs, offset)
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(sql[name], params)
        rows = await cur.fetchall()
    return batch_results(jobs, rows)


async def run_steps_async(conn: AsyncConnection[Any], steps: Steps, sql: Mapping[str, str]) -> EnqueueResult:
    """Drive the steps on an async connection, inside whatever transaction it is in."""
    reply: list[Row] | None = None
    async with conn.cursor(row_factory=dict_row) as cur:
        while True:
            try:
                name, params, returns_rows = steps.send(reply)  # type: ignore[arg-type]
            except StopIteration as done:
                result: EnqueueResult = done.value
                return result
            await cur.execute(sql[name], params)
            reply = await cur.fetchall() if returns_rows else []


def run_steps_sync(conn: Connection[Any], steps: Steps, sql: Mapping[str, str]) -> EnqueueResult:
    """Drive the steps on a sync connection, inside whatever transaction it is in."""
    reply: list[Row] | None = None
    with conn.cursor(row_factory=dict_row) as cur:
        while True:
            try:
                name, params, returns_rows = steps.send(reply)  # type: ignore[arg-type]
            except StopIteration as done:
                result: EnqueueResult = done.value
                return result
            cur.execute(sql[name], params)
            reply = cur.fetchall() if returns_rows else []
