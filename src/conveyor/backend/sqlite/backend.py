"""The embedded engine: SQLite in WAL mode, durable commits, one writer at a time.

Every operation runs as one ``BEGIN IMMEDIATE`` transaction on a connection owned by a single
worker thread, so the engine can be awaited from any event loop (the app's portal loop, a
user's loop, the worker's loop) without sharing a connection across threads. Several processes
may open the same file: SQLite's write lock serialises transitions across them.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

from conveyor import serde, states
from conveyor.backend.apikeys import key_params, row_to_key
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
from conveyor.backend.rows import row_to_event, row_to_job
from conveyor.backend.sqlfile import load_queries, migration_files
from conveyor.backend.sqlite.limits import claim_within_limits, find_unique, limit_columns
from conveyor.backend.workers import row_to_worker
from conveyor.errors import (
    BackendUnavailable,
    ConfigError,
    DependencyError,
    DuplicateJobId,
    IdempotencyConflict,
    InvalidTransition,
    JobNotFound,
    QueueFull,
)
from conveyor.types import (
    DependencyPolicy,
    Job,
    JobEvent,
    JobState,
    QueueStats,
    new_job_id,
)

T = TypeVar("T")
SQL = load_queries("conveyor.backend.sqlite")
PACKAGE = "conveyor.backend.sqlite"
URL_OPTIONS = ("synchronous", "busy_timeout")
"""The query options a ``sqlite://`` URL may carry."""
WATCH_INTERVAL = 0.005
"""Seconds between two looks at ``data_version`` while a worker waits for work."""


def parse_sqlite_url(url: str) -> tuple[str, dict[str, str]]:
    """``sqlite:///relative.db``, ``sqlite:////abs/path.db`` or ``sqlite:///:memory:``."""
    parts = urlsplit(url)
    if parts.scheme != "sqlite":
        raise ConfigError(f"not a sqlite URL: {url!r}")
    path = parts.path[1:] if parts.path.startswith("/") else parts.path
    if not path:
        raise ConfigError(f"sqlite URL needs a file path, e.g. sqlite:///var/conveyor.db (got {url!r})")
    options = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    return path, options


class SQLiteBackend:
    """SQLite engine. ``synchronous=FULL`` by default: a committed job survives power loss.

    ``?synchronous=NORMAL`` in the URL trades the last transactions before an OS crash
    (never an application crash) for faster commits; see docs/operations.md.
    """

    capabilities: frozenset[Capability] = frozenset(
        {Capability.EVENTS, Capability.PAUSE, Capability.EFFECTS, Capability.DEPENDENCIES}
    )

    def __init__(self, url: str) -> None:
        self.url = url
        self.path, options = parse_sqlite_url(url)
        unknown = sorted(set(options) - set(URL_OPTIONS))
        if unknown:  # a typo would otherwise be a silent no-op
            raise ConfigError(f"unknown option(s) {', '.join(unknown)} in SQLite URL; known: {', '.join(URL_OPTIONS)}")
        self.synchronous = options.get("synchronous", "FULL").upper()
        if self.synchronous not in ("FULL", "NORMAL", "EXTRA"):
            raise ConfigError(f"synchronous must be FULL, NORMAL or EXTRA, not {self.synchronous!r}")
        self.busy_timeout_ms = int(options.get("busy_timeout", "30000"))
        self.clock_offset = 0.0
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None
        self._open_lock = threading.Lock()
        self._watchers = threading.local()  # one watch connection per helper thread

    # -- plumbing ---------------------------------------------------------------------------

    def _clock(self) -> float:
        return time.time() + self.clock_offset

    def _connect(self) -> sqlite3.Connection:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {self.busy_timeout_ms}")
        self._enable_wal(conn)
        conn.execute(f"PRAGMA synchronous = {self.synchronous}")
        conn.execute("PRAGMA foreign_keys = OFF")
        return conn

    def _enable_wal(self, conn: sqlite3.Connection) -> None:
        """Switch the file to WAL, waiting out other processes that open it at the same moment.

        Changing the journal mode does not go through the busy handler: on a fresh file opened by
        several processes at once it fails at once with "database is locked". The mode is
        persistent, so retrying until one of them succeeds (or the file already is WAL) is enough.
        """
        deadline = time.monotonic() + self.busy_timeout_ms / 1000
        while True:
            try:
                conn.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() >= deadline:
                    raise
                time.sleep(0.01)

    def _ensure_executor(self) -> ThreadPoolExecutor:
        with self._open_lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="conveyor-sqlite")
            return self._executor

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        executor = self._ensure_executor()

        def call() -> T:
            try:
                if self._conn is None:
                    self._conn = self._connect()
                return fn(self._conn)
            except sqlite3.Error as exc:
                if is_unavailable(exc):
                    raise BackendUnavailable(f"SQLite unavailable: {exc}") from exc
                raise

        return await asyncio.get_running_loop().run_in_executor(executor, call)

    @contextmanager
    def _tx(self, conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        else:
            conn.execute("COMMIT")

    def _event(self, conn: sqlite3.Connection, job_id: str, now: float, type_: str, state: str, **data: Any) -> None:
        conn.execute(
            SQL["insert_event"],
            {"job_id": job_id, "now": now, "type": type_, "state": state, "data": serde.dumps(data)},
        )

    # -- lifecycle ----------------------------------------------------------------------------

    async def open(self) -> None:
        await self.migrate()

    async def close(self) -> None:
        if self._executor is None:
            return

        def shut(conn: sqlite3.Connection) -> None:
            conn.close()
            self._conn = None

        if self._conn is not None:
            await self._run(shut)
        self._executor.shutdown(wait=True)
        self._executor = None

    async def migrate(self) -> list[str]:
        def run(conn: sqlite3.Connection) -> list[str]:
            applied: list[str] = []
            with self._tx(conn):
                conn.execute(SQL["create_migrations_table"])
                done = {r["name"] for r in conn.execute(SQL["applied_migrations"])}
                for name, sql in migration_files(PACKAGE):
                    if name in done:
                        continue
                    for statement in _split_statements(sql):
                        conn.execute(statement)
                    conn.execute(SQL["record_migration"], {"name": name, "now": self._clock()})
                    applied.append(name)
            return applied

        return await self._run(run)

    async def ping(self) -> None:
        await self._run(lambda conn: conn.execute("SELECT 1").fetchone())

    async def now(self) -> float:
        return self._clock()

    # -- enqueue ------------------------------------------------------------------------------

    def _enqueue_one(self, conn: sqlite3.Connection, req: EnqueueRequest, now: float) -> EnqueueResult:
        digest = serde.payload_hash(req.task, req.args)
        if req.idempotency_key is not None:
            key = {"tenant": req.tenant, "key": req.idempotency_key}
            found = conn.execute(SQL["find_idempotency_key"], key).fetchone()
            if found is not None and found["expires_at"] > now:
                if found["payload_hash"] != digest:
                    raise IdempotencyConflict(
                        f"idempotency key {req.idempotency_key!r} was used for a different payload",
                        found["job_id"],
                    )
                existing = conn.execute(SQL["get_job"], {"id": found["job_id"]}).fetchone()
                if existing is not None:
                    return EnqueueResult(row_to_job(existing), created=False)
            if found is not None:
                conn.execute(SQL["delete_idempotency_key"], key)
        if req.unique_key is not None and (holder := find_unique(conn, req)) is not None:
            return EnqueueResult(row_to_job(holder), created=False)
        if req.max_depth is not None:
            depth = conn.execute(SQL["count_pending"], {"queue": req.queue}).fetchone()[0]
            if depth >= req.max_depth:
                raise QueueFull(req.queue, depth, req.max_depth)

        deps = list(dict.fromkeys(req.depends_on))
        dep_states: list[tuple[str, JobState | None]] = []
        for dep in deps:
            row = conn.execute(SQL["get_job"], {"id": dep}).fetchone()
            if row is None or row["tenant"] != req.tenant:
                raise DependencyError(f"dependency {dep!r} does not exist")
            dep_states.append((dep, JobState(row["state"])))
        outcome = states.dependent_outcome(req.on_dependency_failure, req.quorum, [st for _, st in dep_states])
        # Every dependency that may still change is linked, a failed one too (a redrive may
        # bring it back); a succeeded or canceled one never changes again.
        linked = [dep for dep, st in dep_states if st not in (JobState.SUCCEEDED, JobState.CANCELED)]

        run_at = req.run_at if req.run_at is not None else now + (req.delay or 0.0)
        state = states.initial_state(
            canceled_dependency=outcome is states.DependentOutcome.CANCEL,
            unfinished_dependencies=int(outcome is states.DependentOutcome.WAIT),
            due=run_at <= now,
        )
        error = None
        finished_at = None
        if state is JobState.CANCELED:
            lost = states.first_lost(req.on_dependency_failure, dep_states) or deps[0]
            lost_row = conn.execute(SQL["get_job"], {"id": lost}).fetchone()
            error = states.dependency_failed_error(lost, lost_row["step"], JobState(lost_row["state"]))
            finished_at = now
        elif state is JobState.QUEUED:
            run_at = min(run_at, now)
        job_id = req.job_id or new_job_id()
        try:
            conn.execute(
                SQL["insert_job"],
                {
                    "id": job_id,
                    "task": req.task,
                    "queue": req.queue,
                    "tenant": req.tenant,
                    "args": serde.dumps(req.args),
                    "state": state.value,
                    "priority": req.priority,
                    "max_attempts": req.max_attempts,
                    "timeout": req.timeout,
                    "retry": serde.dumps(req.retry.to_dict()),
                    "run_at": run_at,
                    "now": now,
                    "finished_at": finished_at,
                    "error": serde.dumps(error) if error else None,
                    "idempotency_key": req.idempotency_key,
                    "depends_on": serde.dumps(deps),
                    "pending_deps": len(linked),
                    "deps_total": len(deps),
                    **ended_params([st for _, st in dep_states]),
                    "callback_url": req.callback_url,
                    "workflow_id": req.workflow_id,
                    "step": req.step,
                    "on_dependency_failure": req.on_dependency_failure.value,
                    "quorum": req.quorum,
                    "trace_context": None if req.trace_context is None else serde.dumps(req.trace_context),
                    **limit_columns(req),
                },
            )
        except sqlite3.IntegrityError:
            raise DuplicateJobId(f"a job with id {job_id!r} already exists") from None
        for dep in linked if state is not JobState.CANCELED else []:
            conn.execute(SQL["insert_dep"], {"depends_on": dep, "job_id": job_id})
        if req.idempotency_key is not None:
            conn.execute(
                SQL["insert_idempotency_key"],
                {
                    "tenant": req.tenant,
                    "key": req.idempotency_key,
                    "job_id": job_id,
                    "payload_hash": digest,
                    "expires_at": now + req.idempotency_ttl,
                },
            )
        self._event(conn, job_id, now, "enqueued", state.value, queue=req.queue, task=req.task, run_at=run_at)
        row = conn.execute(SQL["get_job"], {"id": job_id}).fetchone()
        return EnqueueResult(row_to_job(row), created=True)

    async def enqueue(self, req: EnqueueRequest) -> EnqueueResult:
        return (await self.enqueue_many([req]))[0]

    async def enqueue_many(self, reqs: list[EnqueueRequest]) -> list[EnqueueResult]:
        def run(conn: sqlite3.Connection) -> list[EnqueueResult]:
            with self._tx(conn):
                now = self._clock()
                return [self._enqueue_one(conn, req, now) for req in reqs]

        return await self._run(run)

    # -- reads --------------------------------------------------------------------------------

    async def get(self, job_id: str, tenant: str | None = None) -> Job | None:
        def run(conn: sqlite3.Connection) -> Job | None:
            row = conn.execute(SQL["get_job"], {"id": job_id}).fetchone()
            if row is None or (tenant is not None and row["tenant"] != tenant):
                return None
            return row_to_job(row)

        return await self._run(run)

    async def list_jobs(self, flt: JobFilter) -> JobPage:
        def run(conn: sqlite3.Connection) -> JobPage:
            rows = conn.execute(
                SQL["list_jobs"],
                {
                    "tenant": flt.tenant,
                    "queue": flt.queue,
                    "task": flt.task,
                    "states": serde.dumps([s.value for s in flt.states]) if flt.states else None,
                    "workflow": flt.workflow,
                    "cursor": flt.cursor,
                    "limit": flt.limit + 1,
                },
            ).fetchall()
            jobs = [row_to_job(r) for r in rows[: flt.limit]]
            more = len(rows) > flt.limit
            return JobPage(jobs, jobs[-1].id if more and jobs else None)

        return await self._run(run)

    async def queue_stats(self, tenant: str | None = None) -> list[QueueStats]:
        def run(conn: sqlite3.Connection) -> list[QueueStats]:
            now = self._clock()
            counts: dict[str, dict[str, int]] = {}
            for r in conn.execute(SQL["state_counts"], {"tenant": tenant}):
                counts.setdefault(r["queue"], {})[r["state"]] = r["n"]
            oldest = {r["queue"]: r["oldest"] for r in conn.execute(SQL["oldest_queued"], {"tenant": tenant})}
            paused = {r["name"]: bool(r["paused"]) for r in conn.execute(SQL["paused_queues"])}
            names = sorted(set(counts) | set(paused))
            return [
                QueueStats(
                    queue=name,
                    counts={s.value: counts.get(name, {}).get(s.value, 0) for s in JobState},
                    oldest_queued_age=max(0.0, now - oldest[name]) if oldest.get(name) is not None else None,
                    paused=paused.get(name, False),
                )
                for name in names
            ]

        return await self._run(run)

    async def queue_position(self, job_id: str) -> int | None:
        def run(conn: sqlite3.Connection) -> int | None:
            row = conn.execute(SQL["get_job"], {"id": job_id}).fetchone()
            if row is None or row["state"] != JobState.QUEUED.value:
                return None
            params = {"queue": row["queue"], "priority": row["priority"], "run_at": row["run_at"], "id": job_id}
            return int(conn.execute(SQL["queue_position"], params).fetchone()[0])

        return await self._run(run)

    async def events(self, req: EventsRequest) -> list[JobEvent]:
        def run(conn: sqlite3.Connection) -> list[JobEvent]:
            rows = conn.execute(SQL["events"], {"job_id": req.job_id, "after_seq": req.after_seq, "limit": req.limit})
            return [row_to_event(r) for r in rows]

        return await self._run(run)

    async def drain_stats(self, queue: str, window: float) -> int:
        def run(conn: sqlite3.Connection) -> int:
            since = self._clock() - window
            return int(conn.execute(SQL["finished_since"], {"queue": queue, "since": since}).fetchone()[0])

        return await self._run(run)

    # -- worker path --------------------------------------------------------------------------

    def _promote_due(self, conn: sqlite3.Connection, now: float) -> int:
        ids = [r["id"] for r in conn.execute(SQL["promote_due"], {"now": now}).fetchall()]
        for job_id in ids:
            self._event(conn, job_id, now, "state", JobState.QUEUED.value)
        return len(ids)

    async def claim(self, req: ClaimRequest) -> list[Job]:
        def run(conn: sqlite3.Connection) -> list[Job]:
            with self._tx(conn):
                now = self._clock()
                self._promote_due(conn, now)
                rows = claim_within_limits(conn, req, now)
                jobs = sorted((row_to_job(r) for r in rows), key=lambda j: (-j.priority, j.run_at, j.id))
                for job in jobs:
                    self._event(conn, job.id, now, "state", "running", attempt=job.attempts, worker=req.worker_id)
                return jobs

        return await self._run(run)

    async def heartbeat(self, req: HeartbeatRequest) -> dict[str, HeartbeatStatus]:
        def run(conn: sqlite3.Connection) -> dict[str, HeartbeatStatus]:
            out: dict[str, HeartbeatStatus] = {}
            with self._tx(conn):
                now = self._clock()
                for lease in req.leases:
                    params = {"id": lease.job_id, "token": lease.token}
                    cur = conn.execute(SQL["extend_lease"], {**params, "now": now, "lease_seconds": req.lease_seconds})
                    if cur.rowcount == 1:
                        out[lease.job_id] = "ok"
                        continue
                    row = conn.execute(SQL["lease_state"], params).fetchone()
                    out[lease.job_id] = "canceled" if row is not None and row["state"] == "canceled" else "lost"
            return out

        return await self._run(run)

    def _settle_dependents(self, conn: sqlite3.Connection, job_id: str, state: JobState, now: float) -> None:
        """``job_id`` just ended in ``state``: visit its waiting dependents in id order, count
        the ending on each, and release, cancel or keep it as ``states.dependent_outcome_counts``
        decides. A dependent canceled here ends too: its own dependents are visited before its
        next sibling (depth first, like lib.lua's recursion), with an explicit stack so a chain
        of any length cascades."""
        stack = [(job_id, state, self._waiting_dependents(conn, job_id))]
        while stack:
            parent, how, todo = stack[-1]
            if not todo:
                stack.pop()
                continue
            dep = conn.execute(SQL["count_ending"], {"id": todo.pop(0), "state": how.value}).fetchone()
            if dep is None:
                continue  # no longer waiting (settled by an earlier visit)
            ended = {OK: dep["deps_succeeded"], FAILED: dep["deps_failed"], CANCELED: dep["deps_canceled"]}
            policy = DependencyPolicy(dep["on_dependency_failure"])
            outcome = states.dependent_outcome_counts(policy, dep["quorum"], dep["deps_total"], ended)
            if outcome is states.DependentOutcome.RELEASE:
                released = conn.execute(SQL["release_dependent"], {"id": dep["id"], "now": now}).fetchone()
                if released is not None:
                    self._event(conn, dep["id"], now, "state", released["state"])
            elif outcome is states.DependentOutcome.CANCEL:
                step = conn.execute(SQL["job_step"], {"id": parent}).fetchone()["step"]
                error = states.dependency_failed_error(parent, step, how)
                params = {"id": dep["id"], "error": serde.dumps(error), "now": now}
                if conn.execute(SQL["cancel_dependent"], params).fetchone() is not None:
                    self._event(conn, dep["id"], now, "state", "canceled", reason=error["message"], error=error)
                    stack.append((dep["id"], JobState.CANCELED, self._waiting_dependents(conn, dep["id"])))

    def _waiting_dependents(self, conn: sqlite3.Connection, job_id: str) -> list[str]:
        return [r["id"] for r in conn.execute(SQL["waiting_dependents"], {"id": job_id})]

    def _complete_one(self, conn: sqlite3.Connection, req: CompleteRequest, result: str, now: float) -> bool:
        params = {"id": req.job_id, "token": req.token, "result": result, "now": now}
        if conn.execute(SQL["complete"], params).fetchone() is None:
            return False
        self._event(conn, req.job_id, now, "state", "succeeded")
        self._settle_dependents(conn, req.job_id, JobState.SUCCEEDED, now)
        return True

    async def complete(self, req: CompleteRequest) -> bool:
        return (await self.complete_many([req]))[0]

    async def complete_many(self, reqs: list[CompleteRequest]) -> list[bool]:
        if not reqs:
            return []
        results = [serde.dumps(req.result) for req in reqs]

        def run(conn: sqlite3.Connection) -> list[bool]:
            with self._tx(conn):
                now = self._clock()
                return [self._complete_one(conn, req, result, now) for req, result in zip(reqs, results, strict=True)]

        return await self._run(run)

    async def fail(self, req: FailRequest) -> JobState | None:
        error = serde.dumps(req.error)

        def run(conn: sqlite3.Connection) -> JobState | None:
            with self._tx(conn):
                now = self._clock()
                params = {
                    "id": req.job_id,
                    "token": req.token,
                    "state": req.state.value,
                    "error": error,
                    "now": now,
                    "delay": max(0.0, req.retry_delay),
                }
                if conn.execute(SQL["fail"], params).fetchone() is None:
                    return None
                self._event(conn, req.job_id, now, "state", req.state.value, error=req.error)
                if req.state is JobState.FAILED:
                    self._settle_dependents(conn, req.job_id, JobState.FAILED, now)
                return req.state

        return await self._run(run)

    async def release(self, req: ReleaseRequest) -> bool:
        def run(conn: sqlite3.Connection) -> bool:
            with self._tx(conn):
                now = self._clock()
                cur = conn.execute(SQL["release"], {"id": req.job_id, "token": req.token, "now": now})
                if cur.rowcount != 1:
                    return False
                self._event(conn, req.job_id, now, "state", "queued", reason="released")
                return True

        return await self._run(run)

    async def progress(self, req: ProgressRequest) -> bool:
        def run(conn: sqlite3.Connection) -> bool:
            with self._tx(conn):
                now = self._clock()
                params = {
                    "id": req.job_id,
                    "token": req.token,
                    "fraction": req.fraction,
                    "message": req.message,
                    "now": now,
                }
                if conn.execute(SQL["progress"], params).fetchone() is None:
                    return False
                self._event(conn, req.job_id, now, "progress", "running", fraction=req.fraction, message=req.message)
                return True

        return await self._run(run)

    async def move(self, req: MoveRequest) -> bool:
        def run(conn: sqlite3.Connection) -> bool:
            with self._tx(conn):
                now = self._clock()
                fence = {"id": req.job_id, "token": req.token}
                row = conn.execute(SQL["running_queue"], fence).fetchone()
                if row is None:
                    return False
                conn.execute(SQL["move"], {**fence, "queue": req.queue, "now": now})
                self._event(conn, req.job_id, now, "state", "queued", reason="moved", to=req.queue, **{"from": row[0]})
                return True

        return await self._run(run)

    async def checkpoint(self, req: CheckpointRequest) -> bool:
        def run(conn: sqlite3.Connection) -> bool:
            with self._tx(conn):
                params = {"id": req.job_id, "token": req.token, "state": serde.dumps(req.state), "now": self._clock()}
                return conn.execute(SQL["checkpoint"], params).fetchone() is not None

        return await self._run(run)

    async def add_artifact(self, req: ArtifactRequest) -> bool:
        def run(conn: sqlite3.Connection) -> bool:
            with self._tx(conn):
                now = self._clock()
                row = conn.execute(SQL["artifacts_of_running"], {"id": req.job_id, "token": req.token}).fetchone()
                if row is None:
                    return False
                kept = [a for a in serde.loads(row["artifacts"]) if a["name"] != req.artifact.name]
                kept.append(req.artifact.to_dict())
                conn.execute(SQL["set_artifacts"], {"id": req.job_id, "artifacts": serde.dumps(kept), "now": now})
                self._event(conn, req.job_id, now, "artifact", "running", **req.artifact.to_dict())
                return True

        return await self._run(run)

    # -- operator actions -------------------------------------------------------------------

    def _cancel_one(self, conn: sqlite3.Connection, job_id: str, reason: str, now: float) -> bool:
        error = serde.dumps({"type": "Canceled", "message": reason})
        if conn.execute(SQL["cancel"], {"id": job_id, "error": error, "now": now}).fetchone() is None:
            return False
        self._event(conn, job_id, now, "state", "canceled", reason=reason)
        self._settle_dependents(conn, job_id, JobState.CANCELED, now)
        return True

    async def cancel(self, req: CancelRequest) -> Job:
        def run(conn: sqlite3.Connection) -> Job:
            with self._tx(conn):
                now = self._clock()
                row = conn.execute(SQL["get_job"], {"id": req.job_id}).fetchone()
                if row is None or (req.tenant is not None and row["tenant"] != req.tenant):
                    raise JobNotFound(f"job {req.job_id} not found")
                if not self._cancel_one(conn, req.job_id, req.reason, now):
                    raise InvalidTransition(f"job {req.job_id} is already {row['state']}")
                return row_to_job(conn.execute(SQL["get_job"], {"id": req.job_id}).fetchone())

        return await self._run(run)

    async def redrive(self, req: RedriveRequest) -> int:
        def run(conn: sqlite3.Connection) -> int:
            with self._tx(conn):
                now = self._clock()
                if req.job_ids:
                    ids = []
                    for job_id in req.job_ids:
                        row = conn.execute(SQL["get_job"], {"id": job_id}).fetchone()
                        if row is not None and (req.tenant is None or row["tenant"] == req.tenant):
                            ids.append(job_id)
                else:
                    params = {"tenant": req.tenant, "queue": req.queue, "task": req.task}
                    ids = [r["id"] for r in conn.execute(SQL["failed_matching"], params).fetchall()]
                moved = 0
                for job_id in ids:
                    if conn.execute(SQL["redrive"], {"id": job_id, "now": now}).fetchone() is not None:
                        self._event(conn, job_id, now, "state", "queued", reason="redriven")
                        conn.execute(SQL["uncount_failure"], {"id": job_id})
                        moved += 1
                return moved

        return await self._run(run)

    async def set_paused(self, req: PauseRequest) -> None:
        def run(conn: sqlite3.Connection) -> None:
            with self._tx(conn):
                conn.execute(SQL["set_paused"], {"queue": req.queue, "paused": int(req.paused)})

        await self._run(run)

    # -- notification outbox ------------------------------------------------------------------

    async def take_outbox(self, req: OutboxRequest) -> list[OutboxEntry]:
        def run(conn: sqlite3.Connection) -> list[OutboxEntry]:
            with self._tx(conn):
                params = {"now": self._clock(), "lease_seconds": req.lease_seconds, "limit": req.limit}
                rows = conn.execute(SQL["take_outbox"], params).fetchall()
            entries = [OutboxEntry(r["seq"], r["job_id"], JobState(r["state"]), r["at"]) for r in rows]
            return sorted(entries, key=lambda e: e.seq)

        return await self._run(run)

    async def ack_outbox(self, seqs: list[int]) -> None:
        if not seqs:
            return

        def run(conn: sqlite3.Connection) -> None:
            with self._tx(conn):
                conn.execute(SQL["ack_outbox"], {"seqs": serde.dumps(list(seqs))})

        await self._run(run)

    # -- maintenance --------------------------------------------------------------------------

    async def expired_leases(self, req: ExpiredRequest) -> list[ExpiredLease]:
        def run(conn: sqlite3.Connection) -> list[ExpiredLease]:
            rows = conn.execute(SQL["expired_leases"], {"now": self._clock(), "limit": req.limit}).fetchall()
            return [ExpiredLease(r["id"], r["lease_token"], r["attempts"], r["max_attempts"]) for r in rows]

        return await self._run(run)

    async def expire(self, req: ExpireRequest) -> list[str]:
        def run(conn: sqlite3.Connection) -> list[str]:
            moved: list[str] = []
            with self._tx(conn):
                now = self._clock()
                for e in req.expiries:
                    params = {
                        "id": e.job_id,
                        "token": e.token,
                        "state": e.state.value,
                        "error": serde.dumps(e.error),
                        "now": now,
                    }
                    if conn.execute(SQL["expire"], params).fetchone() is not None:
                        self._event(conn, e.job_id, now, "state", e.state.value, error=e.error)
                        if e.state is JobState.FAILED:
                            self._settle_dependents(conn, e.job_id, JobState.FAILED, now)
                        moved.append(e.job_id)
            return moved

        return await self._run(run)

    async def promote_scheduled(self) -> int:
        def run(conn: sqlite3.Connection) -> int:
            with self._tx(conn):
                return self._promote_due(conn, self._clock())

        return await self._run(run)

    async def prune(self, req: PruneRequest) -> int:
        def run(conn: sqlite3.Connection) -> int:
            deleted = 0
            with self._tx(conn):
                now = self._clock()
                for row in conn.execute(
                    SQL["prunable"], {"now": now, "older_than": req.older_than, "queues": req.queues_json()}
                ).fetchall():
                    conn.execute(SQL["delete_job_outbox"], {"id": row["id"]})
                    for query in ("delete_job_events", "delete_job_effects", "delete_job_deps", "delete_job"):
                        conn.execute(SQL[query], {"id": row["id"]})
                    deleted += 1
                conn.execute(SQL["delete_expired_keys"], {"now": now})
            return deleted

        return await self._run(run)

    async def record_effect(self, req: EffectRequest) -> EffectOutcome:
        def run(conn: sqlite3.Connection) -> EffectOutcome:
            with self._tx(conn):
                params = {"job_id": req.job_id, "token": req.token, "key": req.key, "value": serde.dumps(req.value)}
                if conn.execute(SQL["record_effect"], params).rowcount == 1:
                    return EffectOutcome.RECORDED
                owned = conn.execute(SQL["effect_fence"], params).fetchone() is not None
                return EffectOutcome.EXISTS if owned else EffectOutcome.LOST

        return await self._run(run)

    async def get_effect(self, job_id: str, key: str) -> tuple[bool, Any]:
        def run(conn: sqlite3.Connection) -> tuple[bool, Any]:
            row = conn.execute(SQL["get_effect"], {"job_id": job_id, "key": key}).fetchone()
            return (False, None) if row is None else (True, serde.loads(row["value"]))

        return await self._run(run)

    async def wait_for_work(self, queues: tuple[str, ...], timeout: float) -> None:
        """Watch ``PRAGMA data_version``, which changes whenever another connection commits.

        The watching runs in a helper thread on its own connection with a plain sleep between
        checks, so an idle node costs a few microseconds per check instead of an event-loop
        round trip, and the engine's connection thread stays free for heartbeats. The wait is
        cut short to the earliest scheduled run_at of these queues, so delayed jobs and retries
        start on time (the claim promotes them) instead of on the promotion tick; an earlier one
        enqueued meanwhile is a commit, which ends the wait, and the next wait sees it.
        """
        stop = threading.Event()
        try:
            await asyncio.to_thread(self._watch_data_version, queues, timeout, stop)
        finally:
            stop.set()  # the awaiting task was canceled or woke up: end the thread's loop too

    def _watch_data_version(self, queues: tuple[str, ...], timeout: float, stop: threading.Event) -> None:
        conn = getattr(self._watchers, "conn", None)
        if conn is None:
            conn = self._watchers.conn = self._connect()
        version = "PRAGMA data_version"
        try:
            start = conn.execute(version).fetchone()[0]  # before next_due: a later commit still wakes
            due = conn.execute(SQL["next_due"], {"queues": serde.dumps(list(queues))}).fetchone()["due"]
            if due is not None:
                timeout = min(timeout, max(0.0, float(due) - self._clock()) + 0.001)
            deadline = time.monotonic() + timeout
            while not stop.wait(min(WATCH_INTERVAL, max(0.0, deadline - time.monotonic()))):
                if conn.execute(version).fetchone()[0] != start or time.monotonic() >= deadline:
                    return
        except sqlite3.Error as exc:
            if is_unavailable(exc):
                raise BackendUnavailable(f"SQLite unavailable: {exc}") from exc
            raise

    # -- API keys -----------------------------------------------------------------------------

    async def create_key(self, req: CreateKeyRequest) -> ApiKeyRecord:
        def run(conn: sqlite3.Connection) -> ApiKeyRecord:
            with self._tx(conn):
                try:
                    conn.execute(SQL["insert_api_key"], key_params(req, self._clock()))
                except sqlite3.IntegrityError:
                    raise ConfigError(f"an API key with id {req.key_id!r} or the same secret exists") from None
                return row_to_key(conn.execute(SQL["get_api_key"], {"key_id": req.key_id}).fetchone())

        return await self._run(run)

    async def find_key(self, secret_hash: str) -> ApiKeyRecord | None:
        def run(conn: sqlite3.Connection) -> ApiKeyRecord | None:
            row = conn.execute(SQL["find_api_key"], {"secret_hash": secret_hash}).fetchone()
            return None if row is None else row_to_key(row)

        return await self._run(run)

    async def list_keys(self) -> list[ApiKeyRecord]:
        return await self._run(lambda conn: [row_to_key(r) for r in conn.execute(SQL["list_api_keys"])])

    async def revoke_key(self, req: RevokeKeyRequest) -> bool:
        def run(conn: sqlite3.Connection) -> bool:
            params = {"key_id": req.key_id, "now": self._clock()}
            return bool(conn.execute(SQL["revoke_api_key"], params).rowcount == 1)

        return await self._run(run)

    # -- live worker nodes --------------------------------------------------------------------

    async def beat_worker(self, beat: WorkerBeat) -> None:
        def run(conn: sqlite3.Connection) -> None:
            params = {"worker_id": beat.worker_id, "info": serde.dumps(beat.info), "now": self._clock()}
            conn.execute(SQL["beat_worker"], params)

        await self._run(run)

    async def list_workers(self) -> list[WorkerRecord]:
        def run(conn: sqlite3.Connection) -> list[WorkerRecord]:
            return [row_to_worker(r) for r in conn.execute(SQL["list_workers"], {"now": self._clock()})]

        return await self._run(run)

    async def forget_workers(self, req: ForgetWorkersRequest) -> int:
        def run(conn: sqlite3.Connection) -> int:
            if req.worker_id is not None:
                return int(conn.execute(SQL["forget_worker"], {"worker_id": req.worker_id}).rowcount)
            if req.silent_for is None:
                return 0
            params = {"now": self._clock(), "silent_for": req.silent_for}
            return int(conn.execute(SQL["forget_silent_workers"], params).rowcount)

        return await self._run(run)


OK, FAILED, CANCELED = JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELED


def ended_params(dependency_states: list[JobState | None]) -> dict[str, int]:
    """The counts a new job starts with: its dependencies already succeeded / failed / canceled."""
    ended = states.ended_counts(dependency_states)
    return {"deps_succeeded": ended[OK], "deps_failed": ended[FAILED], "deps_canceled": ended[CANCELED]}


def is_unavailable(exc: sqlite3.Error) -> bool:
    """True for errors of the storage, not of the statement: the file is locked past the busy
    timeout, the disk is full or failing, the file cannot be opened. Retrying later can succeed,
    so these are BackendUnavailable (503 + Retry-After). Anything else ("no such table", a
    constraint, a bad parameter) is a bug or bad input and propagates as itself.
    """
    name = getattr(exc, "sqlite_errorname", "") or ""
    return name.startswith(UNAVAILABLE_CODES) or (
        not name and isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)
    )


UNAVAILABLE_CODES = (
    "SQLITE_BUSY",
    "SQLITE_LOCKED",
    "SQLITE_IOERR",
    "SQLITE_FULL",
    "SQLITE_CANTOPEN",
    "SQLITE_PROTOCOL",
)


def _split_statements(sql: str) -> list[str]:
    """Split a migration file into statements; a trigger's ``BEGIN ... END;`` body stays whole
    (SQLite's own ``complete_statement`` decides where a statement ends)."""
    lines = [line for line in sql.splitlines() if not line.strip().startswith("--")]
    statements: list[str] = []
    current = ""
    for line in lines:
        current += line + "\n"
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    if current.strip():
        statements.append(current.strip())
    return statements
