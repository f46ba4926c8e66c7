"""The PostgreSQL engine: many worker nodes on many machines share one database.

Each protocol operation is one transaction on a pooled connection (``connection.py``); claims
take a batch with ``FOR UPDATE SKIP LOCKED`` through a partial index that holds only queued
jobs, so finished history never slows the claim path; leases and schedules use the database
clock; idle workers wake by LISTEN/NOTIFY (``listener.py``) and fall back to polling.
The SQL is in ``queries.sql`` and ``migrations/``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import psycopg
from psycopg import AsyncConnection
from psycopg.rows import dict_row

from conveyor import serde, states
from conveyor.backend.apikeys import key_params, row_to_key
from conveyor.backend.postgres import migrate as migrations
from conveyor.backend.postgres.connection import Settings, Transactions, connect, parse_postgres_url, unavailable
from conveyor.backend.postgres.enqueue import enqueue_steps, insert_batch_async, is_plain, run_steps_async
from conveyor.backend.postgres.limits import claim_within_limits
from conveyor.backend.postgres.listener import Listener
from conveyor.backend.postgres.rows import Row, row_to_event, row_to_job
from conveyor.backend.protocol import (
    ApiKeyRecord,
    ArtifactRequest,
    CancelRequest,
    Capability,
    CheckpointRequest,
    ClaimRequest,
    CompleteRequest,
    CreateKeyRequest,
    EffectOutcome,
    EffectRequest,
    EnqueueRequest,
    EnqueueResult,
    EventsRequest,
    ExpiredLease,
    ExpiredRequest,
    ExpireRequest,
    FailRequest,
    ForgetWorkersRequest,
    HeartbeatRequest,
    HeartbeatStatus,
    JobFilter,
    JobPage,
    MoveRequest,
    OutboxEntry,
    OutboxRequest,
    PauseRequest,
    ProgressRequest,
    PruneRequest,
    RedriveRequest,
    ReleaseRequest,
    RevokeKeyRequest,
    WorkerBeat,
    WorkerRecord,
)
from conveyor.backend.sqlfile import load_queries
from conveyor.backend.workers import row_to_worker
from conveyor.errors import BackendUnavailable, ConfigError, InvalidTransition, JobNotFound
from conveyor.types import DependencyPolicy, Job, JobEvent, JobState, QueueStats

T = TypeVar("T")
PACKAGE = "conveyor.backend.postgres"
Conn = AsyncConnection[Any]
PROMOTE_BATCH = 1000
OK, FAILED, CANCELED = JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELED
PRUNE_BATCH = 5000


async def _rows(conn: Conn, query: str, params: dict[str, Any]) -> list[Row]:
    """Run a query that returns rows (every query used this way has RETURNING or is a SELECT)."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query, params)
        return await cur.fetchall()


async def _exec(conn: Conn, query: str, params: dict[str, Any]) -> int:
    """Run a statement without result rows; returns the row count."""
    async with conn.cursor() as cur:
        await cur.execute(query, params)
        return cur.rowcount


async def _one(conn: Conn, query: str, params: dict[str, Any]) -> Row | None:
    rows = await _rows(conn, query, params)
    return rows[0] if rows else None


def _segments(reqs: list[EnqueueRequest]) -> list[list[EnqueueRequest] | EnqueueRequest]:
    """Split a batch, in order, into runs of plain requests (one INSERT each) and the requests
    that need the step-by-step path (key, dependencies, depth limit)."""
    out: list[list[EnqueueRequest] | EnqueueRequest] = []
    for req in reqs:
        if not is_plain(req):
            out.append(req)
        elif out and isinstance(out[-1], list):
            out[-1].append(req)
        else:
            out.append([req])
    return out


class PostgresBackend:
    """PostgreSQL engine for ``postgresql://user@host:5432/db?pool_size=4``.

    Options Conveyor reads from the URL query (the rest goes to libpq): ``pool_size`` (max
    connections, default 4), ``pool_min`` (kept open, default 1), ``pool_timeout`` (seconds to
    wait for a free connection, default 10), ``prepare_threshold`` (``none`` behind PgBouncer
    in transaction mode), ``migrate`` (``false``: open() does not run migrations), ``schema``
    (default ``conveyor``; also the NOTIFY channel, so schemas in one database stay apart).
    """

    capabilities: frozenset[Capability] = frozenset(
        {
            Capability.EVENTS,
            Capability.PAUSE,
            Capability.EFFECTS,
            Capability.DEPENDENCIES,
            Capability.TRANSACTIONAL_ENQUEUE,
            Capability.NOTIFICATIONS,
        }
    )

    def __init__(self, url: str) -> None:
        self.url = url
        self.settings: Settings = parse_postgres_url(url)
        self.sql = load_queries(PACKAGE, schema=self.settings.schema)
        self.clock_offset = 0.0
        self._tx = Transactions(self.settings)
        self._listener = Listener(self.settings)
        self._migrated = False

    async def _run(self, fn: Callable[[Conn], Awaitable[T]], doing: str) -> T:
        """Several statements, one transaction."""
        return await self._tx.run(fn, doing, tx=True)

    async def _write1(self, fn: Callable[[Conn], Awaitable[T]], doing: str) -> T:
        """One data-modifying statement: atomic by itself, one round trip."""
        return await self._tx.run(fn, doing, tx=False)

    async def _redoable(self, fn: Callable[[Conn], Awaitable[T]], doing: str, *, tx: bool = False) -> T:
        """Reads, and writes whose repetition changes nothing (extending a lease): safe to redo
        on a fresh connection if the connection breaks after the statements were sent."""
        return await self._tx.run(fn, doing, tx=tx, redo_safe=True)

    # -- lifecycle ----------------------------------------------------------------------------

    async def open(self) -> None:
        if self.settings.migrate_on_open and not self._migrated:
            await self.migrate()
        await self._tx.open()

    async def close(self) -> None:
        await self._listener.close()
        await self._tx.close()

    async def migrate(self) -> list[str]:
        try:
            conn = await connect(self.settings, autocommit=True)
            try:
                applied = await migrations.apply_migrations(conn, self.settings.schema)
            finally:
                await conn.close()
        except (psycopg.OperationalError, psycopg.InterfaceError, OSError) as exc:
            raise unavailable(exc, "migrating the schema") from exc
        self._migrated = True
        return applied

    async def ping(self) -> None:
        await self._redoable(lambda conn: _rows(conn, self.sql["now"], {"off": 0.0}), "pinging")

    async def now(self) -> float:
        row = await self._redoable(
            lambda conn: _one(conn, self.sql["now"], {"off": self.clock_offset}), "reading the clock"
        )
        assert row is not None
        return float(row["now"])

    # -- enqueue ------------------------------------------------------------------------------

    async def enqueue(self, req: EnqueueRequest) -> EnqueueResult:
        return (await self.enqueue_many([req]))[0]

    async def enqueue_many(self, reqs: list[EnqueueRequest]) -> list[EnqueueResult]:
        """Plain requests go in with one statement per run of them (rows, events, one NOTIFY
        per queue); the others take the step-by-step path at their place in the batch, after
        the earlier rows are written, so a job may depend on an earlier job of the same batch.
        One transaction for the whole batch."""
        offset = self.clock_offset
        segments = _segments(reqs)

        async def run(conn: Conn) -> list[EnqueueResult]:
            results: list[EnqueueResult] = []
            for seg in segments:
                if isinstance(seg, list):
                    results.extend(await insert_batch_async(conn, seg, offset, self.sql))
                else:
                    results.append(await run_steps_async(conn, enqueue_steps(seg, offset), self.sql))
            return results

        if len(segments) == 1 and isinstance(segments[0], list):
            return await self._write1(run, "enqueuing")  # one statement: atomic on its own
        return await self._run(run, "enqueuing")

    # -- reads --------------------------------------------------------------------------------

    async def get(self, job_id: str, tenant: str | None = None) -> Job | None:
        row = await self._redoable(lambda conn: _one(conn, self.sql["get_job"], {"id": job_id}), "reading a job")
        if row is None or (tenant is not None and row["tenant"] != tenant):
            return None
        return row_to_job(row)

    async def list_jobs(self, flt: JobFilter) -> JobPage:
        params = {
            "tenant": flt.tenant,
            "queue": flt.queue,
            "task": flt.task,
            "states": [s.value for s in flt.states] if flt.states else None,
            "workflow": flt.workflow,
            "cursor": flt.cursor,
            "limit": flt.limit + 1,
        }
        rows = await self._redoable(lambda conn: _rows(conn, self.sql["list_jobs"], params), "listing jobs")
        jobs = [row_to_job(r) for r in rows[: flt.limit]]
        more = len(rows) > flt.limit
        return JobPage(jobs, jobs[-1].id if more and jobs else None)

    async def queue_stats(self, tenant: str | None = None) -> list[QueueStats]:
        async def run(conn: Conn) -> tuple[float, list[Row], list[Row], list[Row]]:
            now = await _one(conn, self.sql["now"], {"off": self.clock_offset})
            assert now is not None
            counts = await _rows(conn, self.sql["state_counts"], {"tenant": tenant})
            oldest = await _rows(conn, self.sql["oldest_queued"], {"tenant": tenant})
            paused = await _rows(conn, self.sql["paused_queues"], {})
            return float(now["now"]), counts, oldest, paused

        now, count_rows, oldest_rows, paused_rows = await self._redoable(run, "reading queue stats", tx=True)
        counts: dict[str, dict[str, int]] = {}
        for r in count_rows:
            counts.setdefault(r["queue"], {})[r["state"]] = int(r["n"])
        oldest = {r["queue"]: r["oldest"] for r in oldest_rows}
        paused = {r["name"]: bool(r["paused"]) for r in paused_rows}
        return [
            QueueStats(
                queue=name,
                counts={s.value: counts.get(name, {}).get(s.value, 0) for s in JobState},
                oldest_queued_age=max(0.0, now - oldest[name]) if oldest.get(name) is not None else None,
                paused=paused.get(name, False),
            )
            for name in sorted(set(counts) | set(paused))
        ]

    async def queue_position(self, job_id: str) -> int | None:
        async def run(conn: Conn) -> int | None:
            row = await _one(conn, self.sql["get_job"], {"id": job_id})
            if row is None or row["state"] != JobState.QUEUED.value:
                return None
            params = {"queue": row["queue"], "priority": row["priority"], "run_at": row["run_at"], "id": job_id}
            found = await _one(conn, self.sql["queue_position"], params)
            return int(found["n"]) if found else 0

        return await self._redoable(run, "reading a queue position", tx=True)

    async def events(self, req: EventsRequest) -> list[JobEvent]:
        params = {"job_id": req.job_id, "after_seq": req.after_seq, "limit": req.limit}
        rows = await self._redoable(lambda conn: _rows(conn, self.sql["events"], params), "reading events")
        return [row_to_event(r) for r in rows]

    async def drain_stats(self, queue: str, window: float) -> int:
        params = {"queue": queue, "window": window, "off": self.clock_offset}
        row = await self._redoable(lambda conn: _one(conn, self.sql["finished_since"], params), "reading drain stats")
        return int(row["n"]) if row else 0

    # -- worker path --------------------------------------------------------------------------

    async def claim(self, req: ClaimRequest) -> list[Job]:
        """One transaction: promote due jobs, then claim within limits (postgres/limits.py)."""
        if req.limit <= 0 or not req.queues:
            return []

        async def run(conn: Conn) -> list[Row]:
            await conn.execute(self.sql["promote_due"], {"off": self.clock_offset, "limit": PROMOTE_BATCH})
            return await claim_within_limits(conn, self.sql, req, self.clock_offset)

        rows = await self._run(run, "claiming jobs")
        return sorted((row_to_job(r) for r in rows), key=lambda j: (-j.priority, j.run_at, j.id))

    async def heartbeat(self, req: HeartbeatRequest) -> dict[str, HeartbeatStatus]:
        if not req.leases:
            return {}
        params = {
            "off": self.clock_offset,
            "lease": req.lease_seconds,
            "ids": [lease.job_id for lease in req.leases],
            "tokens": [lease.token for lease in req.leases],
        }
        # Extending a lease twice is harmless: a heartbeat may be redone after a broken connection.
        rows = await self._redoable(lambda conn: _rows(conn, self.sql["heartbeat"], params), "extending leases")
        out: dict[str, HeartbeatStatus] = {r["id"]: "ok" for r in rows if r["ok"]}
        refused = [lease for lease in req.leases if lease.job_id not in out]
        if refused:
            # Read the refused ones again in a fresh statement: the heartbeat's own SELECT sees
            # the snapshot from before it waited on a row lock, so a cancel that committed
            # meanwhile would read as "running" there and be answered "lost", not "canceled".
            again = {
                "ids": [lease.job_id for lease in refused],
                "tokens": [lease.token for lease in refused],
            }
            states = await self._redoable(
                lambda conn: _rows(conn, self.sql["lease_states"], again), "reading lease states"
            )
            canceled = {r["id"] for r in states if r["state"] == JobState.CANCELED.value}
            for lease in refused:
                out[lease.job_id] = "canceled" if lease.job_id in canceled else "lost"
        return out

    async def complete(self, req: CompleteRequest) -> bool:
        params = {"off": self.clock_offset, "id": req.job_id, "token": req.token, "result": serde.dumps(req.result)}

        async def run(conn: Conn) -> bool:
            row = await _one(conn, self.sql["complete"], params)
            if row is None:
                return False
            if row["has_dependents"]:
                # A separate statement: its fresh snapshot sees dependents committed while the
                # UPDATE above waited for this job's row lock.
                await self._settle_dependents(conn, req.job_id, JobState.SUCCEEDED)
            return True

        return await self._run(run, "completing a job")

    async def complete_many(self, reqs: list[CompleteRequest]) -> list[bool]:
        # A repeated (id, token) can succeed only once, as with sequential ``complete`` calls.
        first: dict[tuple[str, str], CompleteRequest] = {}
        for req in reqs:
            first.setdefault((req.job_id, req.token), req)
        unique = list(first.values())
        if not unique:
            return []
        params = {
            "off": self.clock_offset,
            "ids": [r.job_id for r in unique],
            "tokens": [r.token for r in unique],
            "results": [serde.dumps(r.result) for r in unique],
        }

        async def run(conn: Conn) -> list[Row]:
            rows = await _rows(conn, self.sql["complete_many"], params)
            parents = sorted(r["id"] for r in rows if r["has_dependents"])
            if parents:
                # A separate statement: its fresh snapshot sees dependents committed while the
                # UPDATE above waited for the row locks (as in ``complete``).
                counted = await _rows(conn, self.sql["count_successes"], {"ids": parents})
                await self._settle_dependents(
                    conn, parents[0], JobState.SUCCEEDED, sorted(counted, key=lambda r: r["id"])
                )
            return rows

        rows = await self._run(run, "completing jobs")
        done = {(r["id"], r["token"]) for r in rows}
        out: list[bool] = []
        for req in reqs:
            key = (req.job_id, req.token)
            out.append(key in done)
            done.discard(key)  # a duplicate later in the batch is refused, as a second complete is
        return out

    async def fail(self, req: FailRequest) -> JobState | None:
        params = {
            "off": self.clock_offset,
            "id": req.job_id,
            "token": req.token,
            "state": req.state.value,
            "delay": max(0.0, req.retry_delay),
            "error": serde.dumps(req.error),
            "data": serde.dumps({"error": req.error}),
        }

        async def run(conn: Conn) -> Row | None:
            row = await _one(conn, self.sql["fail"], params)
            if row is not None and row["has_dependents"] and row["state"] == JobState.FAILED.value:
                await self._settle_dependents(conn, req.job_id, JobState.FAILED)
            return row

        if req.state is JobState.FAILED:
            row = await self._run(run, "failing a job")
        else:
            row = await self._write1(lambda conn: _one(conn, self.sql["fail"], params), "failing a job")
        return None if row is None else JobState(row["state"])

    async def release(self, req: ReleaseRequest) -> bool:
        params = {"off": self.clock_offset, "id": req.job_id, "token": req.token}
        row = await self._write1(lambda conn: _one(conn, self.sql["release"], params), "releasing a job")
        return row is not None

    async def progress(self, req: ProgressRequest) -> bool:
        params = {
            "off": self.clock_offset,
            "id": req.job_id,
            "token": req.token,
            "fraction": req.fraction,
            "message": req.message,
            "data": serde.dumps({"fraction": req.fraction, "message": req.message}),
        }
        row = await self._write1(lambda conn: _one(conn, self.sql["progress"], params), "recording progress")
        return row is not None

    async def move(self, req: MoveRequest) -> bool:
        params = {"off": self.clock_offset, "id": req.job_id, "token": req.token, "queue": req.queue}
        row = await self._write1(lambda conn: _one(conn, self.sql["move"], params), "moving a job")
        return row is not None

    async def checkpoint(self, req: CheckpointRequest) -> bool:
        params = {"off": self.clock_offset, "id": req.job_id, "token": req.token, "state": serde.dumps(req.state)}
        row = await self._write1(lambda conn: _one(conn, self.sql["checkpoint"], params), "storing a checkpoint")
        return row is not None

    async def add_artifact(self, req: ArtifactRequest) -> bool:
        async def run(conn: Conn) -> bool:
            row = await _one(conn, self.sql["artifacts_of_running"], {"id": req.job_id, "token": req.token})
            if row is None:
                return False
            kept = [a for a in serde.loads(row["artifacts"]) if a["name"] != req.artifact.name]
            kept.append(req.artifact.to_dict())
            params = {
                "off": self.clock_offset,
                "id": req.job_id,
                "artifacts": serde.dumps(kept),
                "data": serde.dumps(req.artifact.to_dict()),
            }
            await _rows(conn, self.sql["set_artifacts"], params)
            return True

        return await self._run(run, "adding an artifact")

    # -- operator actions ---------------------------------------------------------------------

    async def _cancel_one(self, conn: Conn, job_id: str, reason: str) -> bool:
        params = {
            "off": self.clock_offset,
            "id": job_id,
            "error": serde.dumps({"type": "Canceled", "message": reason}),
            "data": serde.dumps({"reason": reason}),
        }
        if await _one(conn, self.sql["cancel"], params) is None:
            return False
        await self._settle_dependents(conn, job_id, JobState.CANCELED)
        return True

    async def _settle_dependents(
        self, conn: Conn, job_id: str, state: JobState, counted: list[Row] | None = None
    ) -> None:
        """``job_id`` just ended in ``state`` (this transaction): visit its waiting dependents
        in id order, count the ending on each (``count_ending``; ``counted``: already counted
        by ``count_successes``), and release, cancel or keep it as
        ``states.dependent_outcome_counts`` decides. A dependent canceled here ends too: its own
        dependents are visited before its next sibling (depth first, like lib.lua), with an
        explicit stack so a chain of any length cascades. Each visit is a fresh statement that
        row-locks the dependent, so of two parents ending at once the second counts on top of
        the first one's commit: a fan-in is released exactly once."""
        off = self.clock_offset
        first: list[Row | str] = list(counted) if counted is not None else await self._waiting_dependents(conn, job_id)
        stack: list[tuple[str, JobState, list[Row | str]]] = [(job_id, state, first)]
        while stack:
            parent, how, todo = stack[-1]
            if not todo:
                stack.pop()
                continue
            item = todo.pop(0)
            dep = (
                await _one(conn, self.sql["count_ending"], {"id": item, "state": how.value})
                if isinstance(item, str)
                else item
            )
            if dep is None:
                continue  # no longer waiting (settled by an earlier visit)
            ended = {OK: dep["deps_succeeded"], FAILED: dep["deps_failed"], CANCELED: dep["deps_canceled"]}
            policy = DependencyPolicy(dep["on_dependency_failure"])
            outcome = states.dependent_outcome_counts(policy, dep["quorum"], dep["deps_total"], ended)
            if outcome is states.DependentOutcome.RELEASE:
                await _rows(conn, self.sql["release_dependent"], {"off": off, "id": dep["id"]})
            elif outcome is states.DependentOutcome.CANCEL:
                step_row = await _one(conn, self.sql["job_step"], {"id": parent})
                error = states.dependency_failed_error(parent, step_row["step"] if step_row else None, how)
                cancel = {
                    "off": off,
                    "id": dep["id"],
                    "error": serde.dumps(error),
                    "data": serde.dumps({"reason": error["message"], "error": error}),
                }
                if await _one(conn, self.sql["cancel_dependent"], cancel) is not None:
                    stack.append((dep["id"], JobState.CANCELED, await self._waiting_dependents(conn, dep["id"])))

    async def _waiting_dependents(self, conn: Conn, job_id: str) -> list[Row | str]:
        return [r["job_id"] for r in await _rows(conn, self.sql["waiting_dependents"], {"id": job_id})]

    async def cancel(self, req: CancelRequest) -> Job:
        async def run(conn: Conn) -> Job:
            row = await _one(conn, self.sql["get_job_for_update"], {"id": req.job_id})
            if row is None or (req.tenant is not None and row["tenant"] != req.tenant):
                raise JobNotFound(f"job {req.job_id} not found")
            if not await self._cancel_one(conn, req.job_id, req.reason):
                raise InvalidTransition(f"job {req.job_id} is already {row['state']}")
            updated = await _one(conn, self.sql["get_job"], {"id": req.job_id})
            assert updated is not None
            return row_to_job(updated)

        return await self._run(run, "canceling a job")

    async def redrive(self, req: RedriveRequest) -> int:
        base = {"off": self.clock_offset, "tenant": req.tenant}
        if req.job_ids:
            name, params = "redrive_ids", {**base, "ids": list(dict.fromkeys(req.job_ids))}
        else:
            name, params = "redrive_matching", {**base, "queue": req.queue, "task": req.task}

        async def run(conn: Conn) -> Row | None:
            row = await _one(conn, self.sql[name], params)
            if row is not None and row["with_dependents"]:
                # The same transaction: a redriven dependency is no longer failed for its dependents.
                await _exec(conn, self.sql["uncount_failures"], {"ids": row["with_dependents"]})
            return row

        row = await self._run(run, "redriving jobs")
        return int(row["n"]) if row else 0

    async def set_paused(self, req: PauseRequest) -> None:
        params = {"queue": req.queue, "paused": req.paused}
        await self._write1(lambda conn: _rows(conn, self.sql["set_paused"], params), "pausing a queue")

    # -- notification outbox ------------------------------------------------------------------

    async def take_outbox(self, req: OutboxRequest) -> list[OutboxEntry]:
        params = {"off": self.clock_offset, "limit": req.limit, "lease_seconds": req.lease_seconds}
        rows = await self._write1(lambda conn: _rows(conn, self.sql["take_outbox"], params), "taking outbox entries")
        entries = [OutboxEntry(int(r["seq"]), r["job_id"], JobState(r["state"]), float(r["at"])) for r in rows]
        return sorted(entries, key=lambda e: e.seq)

    async def ack_outbox(self, seqs: list[int]) -> None:
        if seqs:
            params = {"seqs": list(seqs)}
            await self._write1(lambda conn: _exec(conn, self.sql["ack_outbox"], params), "acknowledging outbox entries")

    # -- maintenance --------------------------------------------------------------------------

    async def expired_leases(self, req: ExpiredRequest) -> list[ExpiredLease]:
        params = {"off": self.clock_offset, "limit": req.limit}
        rows = await self._redoable(
            lambda conn: _rows(conn, self.sql["expired_leases"], params), "reading expired leases"
        )
        return [ExpiredLease(r["id"], r["lease_token"], r["attempts"], r["max_attempts"]) for r in rows]

    async def expire(self, req: ExpireRequest) -> list[str]:
        if not req.expiries:
            return []
        params = {
            "off": self.clock_offset,
            "ids": [e.job_id for e in req.expiries],
            "tokens": [e.token for e in req.expiries],
            "states": [e.state.value for e in req.expiries],
            "errors": [serde.dumps(e.error) for e in req.expiries],
        }

        async def run(conn: Conn) -> list[Row]:
            rows = await _rows(conn, self.sql["expire"], params)
            for row in rows:
                if row["has_dependents"] and row["state"] == JobState.FAILED.value:
                    await self._settle_dependents(conn, row["id"], JobState.FAILED)
            return rows

        rows = await self._run(run, "expiring leases")
        return [r["id"] for r in rows]

    async def promote_scheduled(self) -> int:
        params = {"off": self.clock_offset, "limit": PROMOTE_BATCH}
        row = await self._write1(lambda conn: _one(conn, self.sql["promote_due"], params), "promoting scheduled jobs")
        return int(row["n"]) if row else 0

    async def prune(self, req: PruneRequest) -> int:
        """Delete in batches of PRUNE_BATCH, one transaction each, so pruning a large history
        never holds thousands of row locks or one huge transaction against the workers."""
        params = {
            "off": self.clock_offset,
            "older_than": req.older_than,
            "limit": PRUNE_BATCH,
            "queues": req.queues_json(),
        }
        deleted = 0
        while True:
            row = await self._write1(lambda conn: _one(conn, self.sql["prune_batch"], params), "pruning jobs")
            batch = int(row["n"]) if row else 0
            deleted += batch
            if batch < PRUNE_BATCH:
                break
        await self._write1(
            lambda conn: _exec(conn, self.sql["delete_expired_keys"], {"off": self.clock_offset}), "pruning keys"
        )
        return deleted

    async def record_effect(self, req: EffectRequest) -> EffectOutcome:
        params = {"job_id": req.job_id, "token": req.token, "key": req.key, "value": serde.dumps(req.value)}
        row = await self._write1(lambda conn: _one(conn, self.sql["record_effect"], params), "recording an effect")
        if row is None or not row["owned"]:
            return EffectOutcome.LOST
        return EffectOutcome.RECORDED if row["recorded"] else EffectOutcome.EXISTS

    async def get_effect(self, job_id: str, key: str) -> tuple[bool, Any]:
        row = await self._redoable(
            lambda conn: _one(conn, self.sql["get_effect"], {"job_id": job_id, "key": key}), "reading effect"
        )
        return (False, None) if row is None else (True, serde.loads(row["value"]))

    # -- API keys -----------------------------------------------------------------------------

    async def create_key(self, req: CreateKeyRequest) -> ApiKeyRecord:
        params = {**key_params(req, 0.0), "off": self.clock_offset}
        row = await self._write1(lambda conn: _one(conn, self.sql["insert_api_key"], params), "creating an API key")
        if row is None:
            raise ConfigError(f"an API key with id {req.key_id!r} or the same secret exists")
        return row_to_key(row)

    async def find_key(self, secret_hash: str) -> ApiKeyRecord | None:
        params = {"secret_hash": secret_hash}
        row = await self._redoable(lambda conn: _one(conn, self.sql["find_api_key"], params), "looking up an API key")
        return None if row is None else row_to_key(row)

    async def list_keys(self) -> list[ApiKeyRecord]:
        rows = await self._redoable(lambda conn: _rows(conn, self.sql["list_api_keys"], {}), "listing API keys")
        return [row_to_key(r) for r in rows]

    async def revoke_key(self, req: RevokeKeyRequest) -> bool:
        params = {"key_id": req.key_id, "off": self.clock_offset}
        count = await self._write1(lambda conn: _exec(conn, self.sql["revoke_api_key"], params), "revoking an API key")
        return count == 1

    # -- live worker nodes --------------------------------------------------------------------

    async def beat_worker(self, beat: WorkerBeat) -> None:
        params = {"worker_id": beat.worker_id, "info": serde.dumps(beat.info), "off": self.clock_offset}
        await self._redoable(lambda conn: _exec(conn, self.sql["beat_worker"], params), "registering a worker")

    async def list_workers(self) -> list[WorkerRecord]:
        params = {"off": self.clock_offset}
        rows = await self._redoable(lambda conn: _rows(conn, self.sql["list_workers"], params), "listing workers")
        return [row_to_worker(r) for r in rows]

    async def forget_workers(self, req: ForgetWorkersRequest) -> int:
        if req.worker_id is not None:
            params: dict[str, object] = {"worker_id": req.worker_id}
            query = self.sql["forget_worker"]
        elif req.silent_for is not None:
            params = {"off": self.clock_offset, "silent_for": req.silent_for}
            query = self.sql["forget_silent_workers"]
        else:
            return 0
        return await self._redoable(lambda conn: _exec(conn, query, params), "forgetting workers")

    async def wait_for_work(self, queues: tuple[str, ...], timeout: float) -> None:
        """Sleep until a NOTIFY for these queues, or until their next scheduled job is due
        (delayed jobs and retries start on time without a poller), at most ``timeout``."""
        if timeout <= 0:
            await asyncio.sleep(0)
            return
        params = {"off": self.clock_offset, "queues": list(queues)}
        try:
            row = await self._redoable(
                lambda conn: _one(conn, self.sql["next_due"], params), "reading the next due job"
            )
        except BackendUnavailable:
            row = None  # the engine is down: just wait; the caller's next claim reports it
        if row is not None and row["wait"] is not None:
            timeout = min(timeout, max(0.0, float(row["wait"])) + 0.001)
        await self._listener.wait(queues, timeout)
