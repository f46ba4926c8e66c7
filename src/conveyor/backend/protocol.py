"""The Backend protocol: every storage operation Conveyor needs, one params object each.

Each engine (``backend/sqlite``, ``backend/postgres``, ``backend/redis``) implements every
method as ONE atomic operation (one SQL transaction, one Lua script) and takes all times from
the engine's clock (plus ``clock_offset``, a test hook that shifts the engine clock).
The legal transitions are those of ``conveyor.states.TRANSITIONS``; the conformance suite in
``tests/conformance`` checks every engine against it.

Who decides what. The lifecycle's policy lives in ``conveyor.states`` and is decided by the
caller; an engine applies the decided change atomically and conditionally ("set X if running
with this token"): ``fail`` gets the target state from ``states.after_failure``, ``expire`` gets
each target from ``states.after_expiry`` (``conveyor.reaper`` drives the two steps), and the
initial state of an enqueue is ``states.initial_state`` (called by the SQLite engine and the
PostgreSQL enqueue steps; the Redis script looks it up in ``states.initial_state_table()``
sent with the request). Decided inside the engine, because only the engine can decide them
atomically, and written once per engine:

* **claim order**: priority DESC, run_at ASC, id ASC over the due jobs of non-paused queues;
* **dependency settling**: when a job ends (succeeded, failed, canceled; a retry is not an
  ending), each of its waiting dependents is released (queued, or scheduled if its run_at is
  still in the engine's future), canceled or kept waiting as ``states.dependent_outcome_counts``
  decides from how many of the dependent's dependencies are succeeded / failed / canceled (counts
  kept on the dependent: ``deps_total``, ``deps_<state>``; a redrive uncounts a failure), its
  ``on_dependency_failure`` policy and its ``quorum`` (docs/decisions/0004-dependency-policies.md).
  The rule is written once in states.py; engines call it (SQL engines) or apply its table (the
  Redis scripts get ``states.dependency_rules_table()`` embedded by scripts.py). It runs in the transaction /
  script of the change that ended the job, so two parents ending at once release a fan-in
  exactly once and a crash cannot fall between an ending and its release;
* **due**: whether a run_at has come, on the engine's clock (enqueue, promotion, claim).
* **limits** (``conveyor.limits``): which queued jobs a claim may take (per-key concurrency and
  start rate) and whether an enqueue returns the holder of its unique key.

Semantics every engine must follow:

* ``enqueue``: with ``depends_on`` the dependencies' current states are settled at once by the
  same rule: released (queued/scheduled), canceled (error ``DependencyFailed`` naming the first
  lost dependency) or ``waiting``. An unknown dependency (or one of another tenant) raises
  DependencyError. ``workflow_id``, ``step``, ``on_dependency_failure`` and ``quorum`` are
  stored as given (migration ``0004_workflows``; Redis: fields of the job hash and the
  ``<base>:wf:<id>`` index) and returned on every read. ``run_at`` in the
  future (engine clock) makes it ``scheduled``; else ``queued``. With ``max_depth`` set, the
  enqueue raises QueueFull when the queue already has that many pending (waiting + scheduled +
  queued) jobs. With an idempotency key (scoped by tenant, kept ``idempotency_ttl`` seconds):
  an unexpired key with the same payload hash returns the existing job with ``created=False``;
  with a different hash raises IdempotencyConflict; concurrent duplicates create one job.
  The hash is ``serde.payload_hash(task, args)`` (key order does not matter). A refused
  enqueue (QueueFull, DependencyError, ...) stores nothing, not even its key. Generated ids
  come from ``types.new_job_id`` (time-ordered, increasing within a process).
* Unique jobs: an enqueue with ``unique_key`` U while a job of the same tenant with U is
  waiting, scheduled, queued or running stores nothing and returns that job with
  ``created=False`` (checked after the idempotency key, before ``max_depth``: a duplicate is
  never refused as QueueFull); concurrent duplicates create one job. Once the holder has
  ended (succeeded, failed, canceled) the key is free. A redrive does not check unique keys.
* ``enqueue_many``: one transaction for the batch; any error stores none of it. Requests run in
  order, so a request may depend on (or share a key with) an earlier one of the same batch.
* ``claim``: takes up to ``limit`` jobs that are ``queued``, or ``scheduled`` with
  ``run_at <= now``, from the named non-paused queues, in order priority DESC, run_at ASC,
  id ASC, and returns them in that order. Each claimed job: state running, attempts += 1, new
  lease_token, lease_expires_at = now + lease_seconds, worker_id, started_at = now. No job is
  ever handed to two claimers. (A claim may promote due scheduled jobs to queued on the way.)
  Limits, decided atomically with the claim even when claimers on many nodes race: a job with
  ``concurrency_key`` K is taken only while fewer than its ``concurrency_limit`` jobs with key K
  are ``running`` (any queue, any node; jobs taken by this same claim count); a job with
  ``rate_key`` R is taken only while fewer than its ``rate_limit`` jobs with key R started in
  the sliding window ``(now - rate_period, now]`` (engine clock; every claim of the job is a
  start). A job held back by a limit stays ``queued``, is not charged an attempt, and is
  skipped: the claim goes on to the jobs behind it (no head-of-line blocking), and the job is
  claimable again as soon as a slot frees (a running job of K ends, fails, is canceled or its
  expired lease is reaped) or the window allows. Jobs sharing a key should declare the same
  limit (and period); each candidate is checked against its own.
* ``heartbeat``: for each (job_id, token) extends the lease if the token still matches and the
  job is running; answers per job ``ok``, ``lost`` (token mismatch / not running) or
  ``canceled`` (the job was canceled while running). An unknown job or a stale token of a job
  that another worker now holds answers ``lost``.
* ``complete`` / ``fail`` / ``release`` / ``progress`` / ``add_artifact``: refused (return
  False / None) when the token does not match the running job (fencing).
  ``complete`` stores the result, finishes the job and settles its waiting dependents (see
  Dependencies below); so do ``fail`` to failed, ``expire`` to failed and ``cancel``.
* ``complete_many``: the same as calling ``complete`` for each request in order, but all in one
  transaction / one script call (a worker acknowledges a batch of finished jobs with one round
  trip and one commit). Each request is fenced on its own: a stale token refuses only that job
  (False at its position of the answer), never the others. An empty list does nothing.
  ``fail`` moves the job to the state the caller decided (``states.after_failure``): failed,
  or scheduled at now + retry_delay. ``release`` puts the job back to queued and gives back
  the attempt (attempts -= 1).
* ``expired_leases``: up to ``limit`` running jobs whose lease expired (lease_expires_at < now),
  oldest expiry first, with their token and attempts (a read). ``expire`` applies the caller's
  decision to each: to its ``state`` (queued or failed) with its ``error``, only if the job is
  still running with that token and its lease is still expired (a heartbeat in between wins);
  answers the ids moved.
* Dependencies: when a dependency ends, each waiting dependent is settled by its policy
  (``types.DependencyPolicy``): ``cancel`` (default) cancels it with error
  ``{"type": "DependencyFailed", "message": "dependency <id> (<step>) failed|was canceled",
  "dependency": <id>}`` once its quorum can no longer be reached, and the cancel settles its
  own dependents in turn (cascade); ``continue`` counts any ending as done; ``wait`` leaves it
  waiting on a failed dependency (a redrive may still satisfy it) and cancels it on a canceled
  one. Each change writes its ``state`` event (a cancel's data: ``reason`` and ``error``) and,
  being terminal, its outbox entry.
* ``list_jobs`` with ``JobFilter.workflow``: only that workflow's jobs (tenant rules unchanged).
* ``cancel``: any non-terminal job becomes canceled (a running one loses its lease: its
  next heartbeat answers ``canceled``), and its waiting dependents are settled as above.
  Terminal job: InvalidTransition. Unknown (or other tenant's) job: JobNotFound.
* ``redrive``: failed jobs back to queued, attempts reset to 0, error kept in history.
* Every state change and progress report appends a JobEvent (monotonic ``seq`` per backend)
  so an observer can resume from the last seq it saw without gaps. Types: ``enqueued`` (first,
  with the initial state; data ``queue``, ``task`` and the initial ``run_at``, exact, so an
  idempotent replay can answer what the first submit did), ``state`` (every later change; the
  new state; a failure's data has ``error``), ``progress`` (data ``fraction``, ``message``),
  ``artifact`` (the artifact's fields).
* ``record_effect``: fenced like ``progress``, in one atomic step: when the job is not
  ``running`` with ``token`` (unknown job, stale token, job no longer running) it stores
  nothing and answers ``EffectOutcome.LOST``; else it stores ``value`` under ``key`` unless
  the key is already recorded for the job (answers ``RECORDED``), or keeps the earlier
  record untouched (answers ``EXISTS``: the first record wins, read it with ``get_effect``).
  ``get_effect`` is a plain read, not fenced.
* API keys (``create_key``, ``find_key``, ``list_keys``, ``revoke_key``): the engine stores
  what identifies a key of the job service, never its secret: ``key_id`` (public, unique),
  ``secret_hash`` (SHA-256 hex of the secret, unique), ``name``, ``tenant``, ``scopes`` and
  ``created_at`` / ``revoked_at`` from the engine clock. ``create_key`` raises ConfigError when
  the id or hash is taken; ``find_key`` looks a key up by ``secret_hash`` (revoked keys too:
  the caller refuses them); ``list_keys`` is oldest first (created_at, key_id);
  ``revoke_key`` sets ``revoked_at`` once and answers False for an unknown or already revoked
  key. Keys live in the engine's own schema and settings (migration ``0003_api_keys``).
* Outbox (at-least-once notifications, docs/decisions/0002-webhooks.md): every change that
  brings a job to a terminal state (succeeded, failed, canceled; from another state, or an
  enqueue that creates the job canceled, cascades included) records an ``OutboxEntry`` in the
  SAME transaction / script as the change, in one place per engine (SQL: a trigger on ``jobs``;
  Redis: ``lib.lua`` ``transition()`` and the enqueue script). ``take_outbox`` hands out up
  to ``limit`` entries whose lease is free, oldest first, and hides them from other takers for
  ``lease_seconds``; an entry not acked by then is handed out again (a consumer that died
  loses nothing). Several consumers may take concurrently: an entry may be handed out twice
  (duplicates are allowed, losses are not). ``ack_outbox`` deletes entries (unknown seqs are
  ignored, so acking twice is harmless). Pruning a job deletes its entries too.
* ``move`` (overrun moves, docs/guide.md "Queues"): fenced like ``release``; a job running
  with ``token`` goes back to ``queued`` on queue ``queue`` in one step, giving the attempt back
  (attempts -= 1, never below 0), keeping its id, run_at, events, progress and checkpoint, and
  appending a ``state`` event with data ``{"reason": "moved", "from": <old queue>, "to": <queue>}``.
  Answers False (nothing changed) when the job is not running with that token.
* ``checkpoint``: fenced like ``progress``; stores ``state`` (any JSON value) on the job
  (``Job.checkpoint``), replacing the previous one, with no event. A later attempt of the job
  (after a move, a retry or a reap) reads it back. Answers False when fenced off.
* ``list_jobs``: newest first (id DESC); ``next_cursor`` is None on the last page.
  ``queue_stats``: ``counts`` has every state as a key (0 when none).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal, Protocol, runtime_checkable

from conveyor import serde
from conveyor.limits import check_request
from conveyor.types import (
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_TENANT,
    Artifact,
    DependencyPolicy,
    Job,
    JobEvent,
    JobState,
    QueueStats,
    RetryPolicy,
)


class Capability(enum.StrEnum):
    """An optional feature an engine declares in ``Backend.capabilities``.

    An enum, not free strings, so a misspelt capability is an AttributeError where it is
    written (an engine's declaration, a test's ``requires``), never a silently skipped test.
    """

    EVENTS = "events"
    PAUSE = "pause"
    EFFECTS = "effects"
    DEPENDENCIES = "dependencies"
    TRANSACTIONAL_ENQUEUE = "transactional_enqueue"
    NOTIFICATIONS = "notifications"


HeartbeatStatus = Literal["ok", "lost", "canceled"]


@dataclass(frozen=True)
class EnqueueRequest:
    task: str
    args: dict[str, Any]
    queue: str = "default"
    tenant: str = DEFAULT_TENANT
    priority: int = 0
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    timeout: float | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    delay: float | None = None
    """Seconds from the engine's now; exclusive with run_at."""
    run_at: float | None = None
    """Absolute epoch seconds."""
    idempotency_key: str | None = None
    idempotency_ttl: float = 24 * 3600.0
    depends_on: tuple[str, ...] = ()
    max_depth: int | None = None
    job_id: str | None = None
    """Set by the caller to know the id in advance; generated when None."""
    callback_url: str | None = None
    """Per-submit webhook receiver, stored on the job in the same write (``Job.callback_url``)."""
    workflow_id: str | None = None
    step: str | None = None
    on_dependency_failure: DependencyPolicy = DependencyPolicy.CANCEL
    quorum: int | None = None
    """See ``Job``: the workflow the job belongs to, its step name, and its dependency policy."""
    trace_context: dict[str, str] | None = None
    """W3C trace context of the submit (``Job.trace_context``)."""
    concurrency_key: str | None = None
    concurrency_limit: int | None = None
    rate_key: str | None = None
    rate_limit: int | None = None
    rate_period: float | None = None
    unique_key: str | None = None
    """See ``Job`` and ``conveyor.limits``: checked by ``limits.check_request`` below."""

    def __post_init__(self) -> None:
        check_request(self)


@dataclass(frozen=True)
class EnqueueResult:
    job: Job
    created: bool


@dataclass(frozen=True)
class JobFilter:
    tenant: str | None = None
    """None means every tenant (admin views)."""
    states: tuple[JobState, ...] = ()
    queue: str | None = None
    task: str | None = None
    limit: int = 50
    cursor: str | None = None
    """Return jobs with id < cursor (newest first)."""
    workflow: str | None = None
    """Only the jobs of this workflow."""


@dataclass(frozen=True)
class JobPage:
    jobs: list[Job]
    next_cursor: str | None


@dataclass(frozen=True)
class ClaimRequest:
    worker_id: str
    queues: tuple[str, ...]
    limit: int = 1
    lease_seconds: float = 30.0


@dataclass(frozen=True)
class Lease:
    job_id: str
    token: str


@dataclass(frozen=True)
class HeartbeatRequest:
    leases: tuple[Lease, ...]
    lease_seconds: float = 30.0


@dataclass(frozen=True)
class CompleteRequest:
    job_id: str
    token: str
    result: Any = None


@dataclass(frozen=True)
class FailRequest:
    job_id: str
    token: str
    error: dict[str, Any]
    state: JobState
    """Decided by the caller (``states.after_failure``): SCHEDULED (retry) or FAILED (dead letter)."""
    retry_delay: float = 0.0
    """Seconds from the engine's now until the retry is due (SCHEDULED only)."""

    def __post_init__(self) -> None:
        if self.state not in (JobState.SCHEDULED, JobState.FAILED):
            raise ValueError(f"a failed attempt goes to scheduled or failed, not {self.state.value}")


@dataclass(frozen=True)
class ExpiredRequest:
    limit: int = 1000


@dataclass(frozen=True)
class ExpiredLease:
    """A running job whose lease has expired, as the reaper needs it to decide."""

    job_id: str
    token: str
    attempts: int
    max_attempts: int


@dataclass(frozen=True)
class Expiry:
    job_id: str
    token: str
    state: JobState
    """Decided by the caller (``states.after_expiry``): QUEUED or FAILED."""
    error: dict[str, Any]


@dataclass(frozen=True)
class ExpireRequest:
    expiries: tuple[Expiry, ...]


@dataclass(frozen=True)
class ReleaseRequest:
    job_id: str
    token: str


@dataclass(frozen=True)
class ProgressRequest:
    job_id: str
    token: str
    fraction: float | None
    message: str | None = None


@dataclass(frozen=True)
class ArtifactRequest:
    job_id: str
    token: str
    artifact: Artifact


@dataclass(frozen=True)
class MoveRequest:
    """Move a running job (held under ``token``) to ``queue`` without charging the attempt."""

    job_id: str
    token: str
    queue: str


@dataclass(frozen=True)
class CheckpointRequest:
    """Store ``state`` on a running job, fenced by ``token`` (``ctx.checkpoint``)."""

    job_id: str
    token: str
    state: Any


@dataclass(frozen=True)
class CancelRequest:
    job_id: str
    tenant: str | None = None
    reason: str = "canceled by request"


@dataclass(frozen=True)
class RedriveRequest:
    job_ids: tuple[str, ...] = ()
    """Explicit jobs; when empty, every failed job matching queue/task (and tenant)."""
    tenant: str | None = None
    queue: str | None = None
    task: str | None = None


@dataclass(frozen=True)
class PruneRequest:
    older_than: float
    """Delete terminal jobs finished more than this many seconds ago (and their events)."""
    queues: tuple[tuple[str, float], ...] = ()
    """Per-queue retention, (queue, seconds) pairs that replace ``older_than`` for those queues
    (``QueueConfig.retention``)."""

    def queues_json(self) -> str:
        """The per-queue retention as a JSON object, as the engines' prune queries take it."""
        return serde.dumps(dict(self.queues))


@dataclass(frozen=True)
class EffectRequest:
    job_id: str
    token: str
    """The lease token of the caller's attempt: only the current lease holder records."""
    key: str
    value: Any = None


class EffectOutcome(StrEnum):
    """What ``record_effect`` did (see the module docstring)."""

    RECORDED = "recorded"
    """Stored now: this call's value is the effect's record."""
    EXISTS = "exists"
    """The key was recorded earlier; that record is kept and this value is not stored."""
    LOST = "lost"
    """Fenced off: the job is not running with this token; nothing stored."""


@dataclass(frozen=True)
class EventsRequest:
    job_id: str
    after_seq: int = 0
    limit: int = 1000


@dataclass(frozen=True)
class OutboxRequest:
    limit: int = 100
    lease_seconds: float = 30.0
    """How long the entries taken stay hidden from other takers unless acked."""


@dataclass(frozen=True)
class OutboxEntry:
    """ "Job ``job_id`` reached terminal state ``state`` at ``at`` (engine clock)"."""

    seq: int
    """Increasing per engine; the handle for ``ack_outbox``."""
    job_id: str
    state: JobState
    at: float


@dataclass(frozen=True)
class PauseRequest:
    queue: str
    paused: bool


@dataclass(frozen=True)
class ApiKeyRecord:
    """What an engine stores about an API key of the job service (never the secret)."""

    key_id: str
    name: str
    tenant: str
    scopes: tuple[str, ...]
    secret_hash: str
    created_at: float
    revoked_at: float | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True)
class CreateKeyRequest:
    key_id: str
    secret_hash: str
    tenant: str
    scopes: tuple[str, ...]
    name: str = ""


@dataclass(frozen=True)
class RevokeKeyRequest:
    key_id: str


@dataclass(frozen=True)
class WorkerBeat:
    """A live node announcing itself: ``info`` holds host, pid, queues, concurrency, in-flight
    jobs and version (free-form JSON, shown as it is by ``conveyor workers`` and the dashboard)."""

    worker_id: str
    info: dict[str, Any]


@dataclass(frozen=True)
class WorkerRecord:
    worker_id: str
    info: dict[str, Any]
    started_at: float
    """Engine time of the node's first beat."""
    last_seen: float
    """Engine time of its latest beat."""
    silent_for: float
    """Seconds since ``last_seen`` on the engine clock when read (a node is dead past a limit)."""


@dataclass(frozen=True)
class ForgetWorkersRequest:
    worker_id: str | None = None
    """Forget this node (it stopped cleanly)."""
    silent_for: float | None = None
    """Forget every node that has not beaten for this many seconds (dead long enough)."""


@runtime_checkable
class Backend(Protocol):
    """Storage for jobs. All methods are coroutines and each is atomic."""

    capabilities: frozenset[Capability]
    """Optional features this engine has, e.g. {Capability.TRANSACTIONAL_ENQUEUE}."""

    clock_offset: float
    """Test hook: seconds added to the engine clock for every time comparison."""

    async def open(self) -> None:
        """Connect and make sure the schema is current (runs migrations)."""

    async def close(self) -> None: ...

    async def migrate(self) -> list[str]:
        """Apply pending schema migrations; returns the names applied (safe to run concurrently)."""

    async def ping(self) -> None:
        """Raise BackendUnavailable if the engine cannot be reached."""

    async def now(self) -> float:
        """The engine clock (plus clock_offset), epoch seconds."""

    async def enqueue(self, req: EnqueueRequest) -> EnqueueResult: ...

    async def enqueue_many(self, reqs: list[EnqueueRequest]) -> list[EnqueueResult]:
        """All in one transaction: either every job is stored or none is."""

    async def get(self, job_id: str, tenant: str | None = None) -> Job | None: ...

    async def list_jobs(self, flt: JobFilter) -> JobPage: ...

    async def queue_stats(self, tenant: str | None = None) -> list[QueueStats]:
        """One entry per queue known to the engine (has jobs or is paused)."""

    async def queue_position(self, job_id: str) -> int | None:
        """How many runnable jobs of its queue are claimed before this one; None unless queued."""

    async def claim(self, req: ClaimRequest) -> list[Job]: ...

    async def heartbeat(self, req: HeartbeatRequest) -> dict[str, HeartbeatStatus]: ...

    async def complete(self, req: CompleteRequest) -> bool: ...

    async def complete_many(self, reqs: list[CompleteRequest]) -> list[bool]:
        """Complete several jobs atomically; answer i is what ``complete(reqs[i])`` would answer."""

    async def fail(self, req: FailRequest) -> JobState | None:
        """The state the job moved to (scheduled or failed), None when fenced off."""

    async def release(self, req: ReleaseRequest) -> bool: ...

    async def progress(self, req: ProgressRequest) -> bool: ...

    async def move(self, req: MoveRequest) -> bool:
        """Running (with this token) -> queued on another queue, attempt given back; False if fenced off."""

    async def checkpoint(self, req: CheckpointRequest) -> bool:
        """Store a running job's checkpoint (fenced by the token); False if fenced off."""

    async def add_artifact(self, req: ArtifactRequest) -> bool: ...

    async def cancel(self, req: CancelRequest) -> Job: ...

    async def redrive(self, req: RedriveRequest) -> int: ...

    async def expired_leases(self, req: ExpiredRequest) -> list[ExpiredLease]:
        """Running jobs whose lease expired (read only; ``conveyor.reaper`` decides their fate)."""

    async def expire(self, req: ExpireRequest) -> list[str]:
        """Apply each decided expiry if the job is still running, expired, with that token."""

    async def promote_scheduled(self) -> int:
        """Move due scheduled jobs to queued; returns how many."""

    async def prune(self, req: PruneRequest) -> int:
        """Delete old finished jobs and expired idempotency keys; returns jobs deleted."""

    async def record_effect(self, req: EffectRequest) -> EffectOutcome:
        """Remember that side effect ``key`` of the job is done, if the caller holds the lease."""

    async def get_effect(self, job_id: str, key: str) -> tuple[bool, Any]:
        """(done, value) of a side effect recorded earlier for this job."""

    async def events(self, req: EventsRequest) -> list[JobEvent]: ...

    async def set_paused(self, req: PauseRequest) -> None: ...

    async def take_outbox(self, req: OutboxRequest) -> list[OutboxEntry]:
        """Up to ``limit`` unacked entries not leased by another taker, in seq order; leases them."""

    async def ack_outbox(self, seqs: list[int]) -> None:
        """Delete these entries (delivered); unknown seqs are ignored."""

    async def wait_for_work(self, queues: tuple[str, ...], timeout: float) -> None:
        """Return when new work may be claimable in these queues, or after ``timeout`` seconds.

        Engines wake by notification (LISTEN/NOTIFY, blocking pops, data_version polling);
        a spurious wake-up is allowed, a missed one only costs up to ``timeout``.
        """

    async def drain_stats(self, queue: str, window: float) -> int:
        """How many jobs of the queue finished in the last ``window`` seconds (for Retry-After)."""

    async def create_key(self, req: CreateKeyRequest) -> ApiKeyRecord:
        """Store a new API key, stamped with the engine clock (ConfigError if id or hash is taken)."""

    async def find_key(self, secret_hash: str) -> ApiKeyRecord | None:
        """The key whose secret hashes to ``secret_hash``, revoked or not; None if there is none."""

    async def list_keys(self) -> list[ApiKeyRecord]:
        """Every key, oldest first."""

    async def revoke_key(self, req: RevokeKeyRequest) -> bool:
        """Set revoked_at (engine clock); False if the key is unknown or already revoked."""

    async def beat_worker(self, beat: WorkerBeat) -> None:
        """Register the node or refresh it: ``last_seen`` = engine now, ``info`` replaced."""

    async def list_workers(self) -> list[WorkerRecord]:
        """Every registered node, by worker id, with how long each has been silent."""

    async def forget_workers(self, req: ForgetWorkersRequest) -> int:
        """Delete one node's record, or those silent for at least ``silent_for``; the count."""
