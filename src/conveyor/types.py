"""Plain data shared by every layer: jobs, their states, queue and retry settings.

No I/O and no imports from the rest of Conveyor: every other module may depend on this one.
Timestamps are float seconds since the Unix epoch, always read from the engine's clock.
"""

from __future__ import annotations

import enum
import os
import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from conveyor.errors import ConfigError  # errors.py is a leaf like this module (no I/O, no imports)

JSONValue = Any
"""Anything `serde.dumps` accepts: dicts, lists, str, int, float, bool, None."""

DEFAULT_TENANT = "default"
INTERNAL_TENANT = "conveyor.internal"
"""Owner of the jobs Conveyor enqueues for itself (webhook deliveries): no API key may have it,
so no tenant can list, read or cancel them; admins and the CLI see them."""
DEFAULT_MAX_ATTEMPTS = 3
"""Claims a job gets before it is dead-lettered, unless its task or submit says otherwise."""


class JobState(enum.StrEnum):
    """Detailed lifecycle state of a job (DESIGN §1)."""

    WAITING = "waiting"
    SCHEDULED = "scheduled"
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATES

    def __str__(self) -> str:
        return self.value


class DependencyPolicy(enum.StrEnum):
    """What a waiting dependent does when one of its dependencies ends without succeeding.

    ``cancel`` (the default, fail-fast): the dependent becomes canceled, its error naming the
    dependency that failed or was canceled, and the cancel cascades to its own dependents.
    ``continue``: a dependency that ends in any terminal state counts as done; the dependent
    runs and reads each dependency's outcome from ``ctx.dependencies``.
    ``wait``: a failed dependency leaves the dependent waiting (a redrive of the dependency
    may still satisfy it); a canceled one cancels it. With a ``quorum``, the dependent is only
    canceled once the quorum can no longer be reached.
    """

    CANCEL = "cancel"
    CONTINUE = "continue"
    WAIT = "wait"

    def __str__(self) -> str:
        return self.value


TERMINAL_STATES = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELED})
PENDING_STATES = frozenset({JobState.WAITING, JobState.SCHEDULED, JobState.QUEUED})


_RAND_BITS = 74  # 12 bits of rand_a + 62 bits of rand_b
_id_lock = threading.Lock()
_last_id: tuple[int, int] = (0, 0)


def _forget_last_id() -> None:
    """A forked child draws fresh random bits instead of counting on from its parent's state."""
    global _last_id
    _last_id = (0, 0)


os.register_at_fork(after_in_child=_forget_last_id)


def new_job_id() -> str:
    """A UUIDv7 id: time-ordered, so ids sort by creation and paginate cheaply.

    Strictly increasing within a process (RFC 9562 method 3: inside one millisecond the random
    bits grow by a random step), so jobs submitted together in one batch, which share a
    timestamp, are still claimed in submission order (the claim order ends on ``id ASC``).
    """
    global _last_id
    with _id_lock:
        ms = int(time.time() * 1000)
        last_ms, last_rand = _last_id
        rand = last_rand + 1 + int.from_bytes(os.urandom(4), "big")
        if ms > last_ms or rand >> _RAND_BITS:
            ms, rand = max(ms, last_ms + (ms <= last_ms)), int.from_bytes(os.urandom(9), "big") >> 1
        _last_id = (ms, rand)
    value = (ms << 80) | (0x7 << 76) | ((rand >> 62) & 0xFFF) << 64 | (0b10 << 62) | (rand & ((1 << 62) - 1))
    return str(uuid.UUID(int=value))


def new_lease_token() -> str:
    """A fresh fencing token for one claim."""
    return uuid.uuid4().hex


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter between attempts.

    The delay before attempt n+1 is ``min(max_delay, base_delay * factor ** (n - 1))``; with
    jitter, a uniform draw from the upper half of that, so a burst of failures does not retry
    in lockstep while the delay still grows.
    """

    base_delay: float = 1.0
    factor: float = 2.0
    max_delay: float = 300.0
    jitter: bool = True

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after the failed attempt number ``attempt`` (1-based)."""
        exponent = max(0, attempt - 1)
        raw = min(self.max_delay, self.base_delay * (self.factor**exponent))
        if not self.jitter or raw <= 0:
            return raw
        draw = (rng or random).uniform(0.5, 1.0)
        return raw * draw

    def to_dict(self) -> dict[str, Any]:
        return {
            "base_delay": self.base_delay,
            "factor": self.factor,
            "max_delay": self.max_delay,
            "jitter": self.jitter,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> RetryPolicy:
        if not data:
            return cls()
        return cls(
            base_delay=float(data.get("base_delay", 1.0)),
            factor=float(data.get("factor", 2.0)),
            max_delay=float(data.get("max_delay", 300.0)),
            jitter=bool(data.get("jitter", True)),
        )


@dataclass(frozen=True)
class Artifact:
    """A result file a job saved to the result store."""

    name: str
    size: int
    content_type: str
    location: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "size": self.size, "content_type": self.content_type, "location": self.location}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Artifact:
        return cls(str(data["name"]), int(data["size"]), str(data["content_type"]), str(data["location"]))


@dataclass
class Job:
    """One unit of background work and everything known about it."""

    id: str
    task: str
    queue: str
    args: dict[str, Any]
    state: JobState
    tenant: str = DEFAULT_TENANT
    priority: int = 0
    attempts: int = 0
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    timeout: float | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    run_at: float = 0.0
    created_at: float = 0.0
    updated_at: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None
    lease_token: str | None = None
    lease_expires_at: float | None = None
    worker_id: str | None = None
    progress: float | None = None
    progress_message: str | None = None
    result: JSONValue = None
    error: dict[str, Any] | None = None
    idempotency_key: str | None = None
    depends_on: list[str] = field(default_factory=list)
    artifacts: list[Artifact] = field(default_factory=list)
    callback_url: str | None = None
    workflow_id: str | None = None
    """Shared by every job enqueued together (a chain, a group, a batch with dependencies)."""
    step: str | None = None
    """The job's name inside its workflow; dependents read its result as ``ctx.results[step]``."""
    on_dependency_failure: DependencyPolicy = DependencyPolicy.CANCEL
    quorum: int | None = None
    """How many dependencies must succeed (``continue``: end) before the job is released; None: all."""
    trace_context: dict[str, str] | None = None
    """W3C trace context (``traceparent``/``tracestate``) of the submit, so the worker's span
    joins the submitting request's trace (``conveyor.tracing``)."""
    concurrency_key: str | None = None
    """Limit group: at most ``concurrency_limit`` jobs with this key run at once (docs/guide-limits.md)."""
    concurrency_limit: int | None = None
    rate_key: str | None = None
    """Rate group: at most ``rate_limit`` jobs with this key start per ``rate_period`` seconds."""
    rate_limit: int | None = None
    rate_period: float | None = None
    unique_key: str | None = None
    """At most one pending or running job per (tenant, unique_key); a duplicate submit gets it back."""
    checkpoint: JSONValue = None
    """The last state the task saved with ``ctx.checkpoint`` (fenced); ``ctx.resume_state`` next run."""

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL_STATES


@dataclass(frozen=True)
class QueueConfig:
    """Per-queue settings, declared in code (``Conveyor(queues=[...])``) or in a config file
    (``conveyor.queues_config``), and honoured by every part that reads them.

    ``max_depth`` is the backpressure limit: once this many jobs are pending (waiting,
    scheduled or queued) a submit is refused with QueueFull instead of growing the backlog.
    ``max_runtime`` (seconds) with ``overflow_to``: a job of this queue still running after
    ``max_runtime`` is stopped and moved to the ``overflow_to`` queue without charging an
    attempt (same id, events, progress and checkpoint), so short jobs never wait behind it.
    The two come together: a runtime limit with nowhere to go would be a silent no-op.
    ``priority`` is the default priority of submits to this queue (a task's or a submit's own
    priority wins). ``paused`` is applied to the engine when a worker node or the job service
    starts (``conveyor queues pause/resume`` changes it at runtime).
    """

    name: str
    max_depth: int | None = None
    overflow_to: str | None = None
    max_runtime: float | None = None
    concurrency: int | None = None
    """At most this many jobs of the queue running at once, fleet-wide (concurrency key
    ``queue:<name>``, enforced in the claim; docs/guide-limits.md)."""
    rate_limit: str | tuple[int, float] | None = None
    """At most this many starts per period, e.g. ``"100/m"`` (rate key ``queue:<name>``)."""
    priority: int | None = None
    paused: bool | None = None
    retention: float | None = None
    """Seconds a finished job of this queue (with its artifacts and uploads) is kept before it
    is pruned; None: the worker's ``--retention-days``."""

    def __post_init__(self) -> None:
        if not self.name:
            raise ConfigError("QueueConfig name must be a non-empty queue name")
        if self.retention is not None and not self.retention >= 0:
            raise ConfigError(f"QueueConfig({self.name!r}) retention must be seconds >= 0 (got {self.retention})")
        if self.max_depth is not None and self.max_depth < 0:
            raise ConfigError(f"QueueConfig({self.name!r}) max_depth must not be negative (got {self.max_depth})")
        if self.concurrency is not None and self.concurrency < 1:
            raise ConfigError(f"QueueConfig({self.name!r}) concurrency must be at least 1 (got {self.concurrency})")
        if self.max_runtime is not None and not self.max_runtime > 0:
            raise ConfigError(f"QueueConfig({self.name!r}) max_runtime must be a positive number of seconds")
        if (self.max_runtime is None) != (self.overflow_to is None):
            raise ConfigError(
                f"QueueConfig({self.name!r}) max_runtime and overflow_to go together: a job that overruns "
                "max_runtime moves to the overflow_to queue (give both, or neither)"
            )
        if self.overflow_to == self.name:
            raise ConfigError(f"QueueConfig({self.name!r}) overflow_to must name another queue")

    def to_dict(self) -> dict[str, Any]:
        """The declared settings as JSON (``conveyor queues``, ``/v1/queues``)."""
        return {
            "max_depth": self.max_depth,
            "max_runtime": self.max_runtime,
            "overflow_to": self.overflow_to,
            "priority": self.priority,
            "paused": self.paused,
            "retention": self.retention,
            "concurrency": self.concurrency,
            "rate_limit": list(self.rate_limit) if isinstance(self.rate_limit, tuple) else self.rate_limit,
        }


@dataclass(frozen=True)
class QueueStats:
    """Depth of one queue by state and the age of its oldest runnable job."""

    queue: str
    counts: dict[str, int]
    oldest_queued_age: float | None
    paused: bool = False

    @property
    def pending(self) -> int:
        return sum(self.counts.get(s.value, 0) for s in PENDING_STATES)


@dataclass(frozen=True)
class JobEvent:
    """One entry of a job's history: a state change or a progress report."""

    seq: int
    job_id: str
    at: float
    type: str
    state: JobState
    data: dict[str, Any]
