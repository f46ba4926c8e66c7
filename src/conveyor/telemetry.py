"""One typed seam for telemetry: events emitted by the code that knows, handlers attached to the app.

The engine stays a pure storage protocol (``Backend``); nothing wraps it. Instead the code that
calls it and knows what the answer means emits a small typed event on ``app.telemetry``:

* ``JobsSubmitted``: the app's enqueue path and the API's submit, for jobs actually stored
  (an idempotent replay is not a submit);
* ``JobClaimed`` / ``JobEnded``: the worker supervisor, after a claim and after it recorded an
  outcome (``run_seconds`` is what it measured itself); the API and the app for cancels;
* ``EngineCall``: ``Telemetry.timed`` around the engine calls of the worker, maintenance and API.

Handlers (``app.telemetry.attach(handler)``) receive every event synchronously, in the emitting
thread: the Prometheus counters (``conveyor.metrics``, attached by the app when it first opens
its engine), a node's outbox consumer (nudged when a job ended here, see webhooks/notifier.py),
your own tracing. Like Oban's ``:telemetry`` events, emitting costs a function call per
handler and never an engine round trip; a handler that raises is logged and ignored, so
telemetry can never fail or slow down a job's lifecycle beyond its own code.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, TypeVar

from conveyor.types import Job

T = TypeVar("T")
LOGGER = logging.getLogger("conveyor.telemetry")

Outcome = Literal["succeeded", "failed", "retried", "canceled"]
"""How an attempt ended: ``failed`` is the dead letter, ``retried`` a failure that will run again."""


@dataclass(frozen=True)
class JobsSubmitted:
    """Jobs newly stored by one enqueue call (replays of an idempotency key excluded)."""

    jobs: tuple[Job, ...]


@dataclass(frozen=True)
class JobClaimed:
    """A worker took a job (one event per attempt)."""

    job: Job


@dataclass(frozen=True)
class JobEnded:
    """The engine accepted an attempt's end (or a cancel). ``run_seconds``: claim to end, when
    the emitter ran the attempt itself (None for a cancel)."""

    job_id: str
    task: str
    outcome: Outcome
    run_seconds: float | None = None

    @property
    def terminal(self) -> bool:
        """The job will not run again (unless redriven): a notification is due."""
        return self.outcome != "retried"


@dataclass(frozen=True)
class EngineCall:
    """One engine operation as seen by its caller; ``error_type`` names the exception, if any."""

    operation: str
    seconds: float
    error_type: str | None = None


Event = JobsSubmitted | JobClaimed | JobEnded | EngineCall
Handler = Callable[[Event], None]


class Telemetry:
    """The dispatcher an app owns (``app.telemetry``): ``attach`` handlers, ``emit`` events."""

    def __init__(self) -> None:
        self._handlers: tuple[Handler, ...] = ()
        self._lock = threading.Lock()

    def attach(self, handler: Handler) -> Callable[[], None]:
        """Call ``handler(event)`` for every event from now on; returns a function that detaches it."""
        with self._lock:
            self._handlers = (*self._handlers, handler)

        def detach() -> None:
            with self._lock:
                self._handlers = tuple(h for h in self._handlers if h is not handler)

        return detach

    def emit(self, event: Event) -> None:
        """Hand ``event`` to every handler; a handler's exception is logged, never raised."""
        for handler in self._handlers:
            try:
                handler(event)
            except Exception:
                LOGGER.exception("telemetry handler %r failed on %s", handler, type(event).__name__)

    def submitted(self, jobs: list[Job], created: list[bool]) -> None:
        """Emit ``JobsSubmitted`` for the jobs of one enqueue call that were created."""
        new = tuple(job for job, made in zip(jobs, created, strict=True) if made)
        if new:
            self.emit(JobsSubmitted(new))

    async def timed(self, operation: str, call: Awaitable[T]) -> T:
        """Await one engine call and emit its ``EngineCall`` (with the error type if it raised)."""
        start = time.perf_counter()
        try:
            result = await call
        except Exception as exc:
            self.emit(EngineCall(operation, time.perf_counter() - start, type(exc).__name__))
            raise
        self.emit(EngineCall(operation, time.perf_counter() - start))
        return result
