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
* **dependency release**: when a job succeeds, each waiting dependent whose dependencies have
  all succeeded becomes queued (scheduled if its run_at is still in the engine's future);
* **due**: whether a run_at has come, on the engine's clock (enqueue, promotion, claim).

Semantics every engine must follow:

* ``enqueue``: with ``depends_on`` the job starts ``waiting`` unless every dependency already
  succeeded (then queued/scheduled); a dependency that is canceled makes the new job canceled;
  an unknown dependency (or one of another tenant) raises DependencyError. ``run_at`` in the
  future (engine clock) makes it ``scheduled``; else ``queued``. With ``max_depth`` set, the
  enqueue raises QueueFull when the queue already has that many pending (waiting + scheduled +
  queued) jobs. With an idempotency key (scoped by tenant, kept ``idempotency_ttl`` seconds):
  an unexpired key with the same payload hash returns the existing job with ``created=False``;
  with a different hash raises IdempotencyConflict; concurrent duplicates create one job.
  The hash is ``serde.payload_hash(task, args)`` (key order does not matter). A refused
  enqueue (QueueFull, DependencyError, ...) stores nothing, not even its key. Generated ids
  come from ``types.new_job_id`` (time-ordered, increasing within a process).
* ``enqueue_many``: one transaction for the batch; any error stores none of it. Requests run in
  order, so a request may depend on (or share a key with) an earlier one of the same batch.
* ``claim``: takes up to ``limit`` jobs that are ``queued``, or ``scheduled`` with
  ``run_at <= now``, from the named non-paused queues, in order priority DESC, run_at ASC,
  id ASC, and returns them in that order. Each claimed job: state running, attempts += 1, new
  lease_token, lease_expires_at = now + lease_seconds, worker_id, started_at = now. No job is
  ever handed to two claimers. (A claim may promote due scheduled jobs to queued on the way.)
* ``heartbeat``: for each (job_id, token) extends the lease if the token still matches and the
  job is running; answers per job ``ok``, ``lost`` (token mismatch / not running) or
  ``canceled`` (the job was canceled while running). An unknown job or a stale token of a job
  that another worker now holds answers ``lost``.
* ``complete`` / ``fail`` / ``release`` / ``progress`` / ``add_artifact``: refused (return
  False / None) when the token does not match the running job (fencing).
  ``complete`` stores the result, finishes the job and moves every waiting dependent whose
  dependencies have all succeeded to queued (or scheduled if its run_at is in the future).
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
* Dependencies: a dependent of a failed job stays waiting (a redrive may still satisfy it).
* ``cancel``: any non-terminal job becomes canceled (a running one loses its lease: its
  next heartbeat answers ``canceled``), and waiting dependents are canceled too.
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
* ``list_jobs``: newest first (id DESC); ``next_cursor`` is None on the last page.
  ``queue_stats``: ``counts`` has every state as a key (0 when none).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal, Protocol, runtime_checkable

from conveyor import serde
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
