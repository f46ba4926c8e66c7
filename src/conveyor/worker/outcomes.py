"""Recording how an attempt ended: the only place a node tells the engine a job's outcome.

Every write carries the job's lease token, so a node that lost the lease is fenced off by the
engine and told so (``job.refused``). Successes go through the ``CompletionBatcher`` (one
``complete_many`` for every job that finished meanwhile); failures and hand-backs are one call
each. A write is retried while the engine is briefly unavailable, for at most one lease.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from conveyor import states
from conveyor.backend.protocol import Backend, CompleteRequest, FailRequest, MoveRequest, ReleaseRequest
from conveyor.errors import BackendUnavailable
from conveyor.telemetry import JobEnded, Telemetry
from conveyor.types import Job, JobState
from conveyor.worker.acks import CompletionBatcher
from conveyor.worker.codec import Outcome, error_dict
from conveyor.worker.jobrun import JobRun
from conveyor.worker.logs import log
from conveyor.worker.stop import StopReason

T = TypeVar("T")
ENGINE_RETRY = 0.5
"""Seconds between two tries of an outcome write while the engine is unavailable."""


async def retry_engine(call: Callable[[], Awaitable[T]], patience: float) -> T | None:
    """Retry an outcome write while the engine is briefly unavailable (up to ``patience`` s).

    Giving up (None) is safe: the lease then expires and the reaper requeues the job. Only an
    outage is waited out; any other error is a bug and is raised at once, never retried.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + patience
    while True:
        try:
            return await call()
        except BackendUnavailable as exc:
            if loop.time() > deadline:
                log("worker.engine_error", logging.ERROR, error=str(exc))
                return None
            await asyncio.sleep(ENGINE_RETRY)


def failure_request(job: Job, token: str, outcome: Outcome) -> FailRequest:
    """The engine call recording a failed attempt: the lifecycle (``states.after_failure``)
    decides between a retry after the task's backoff and the dead letter; the engine applies it."""
    error = outcome.error or error_dict("Error", "unknown failure")
    state = states.after_failure(job.attempts, job.max_attempts, retryable=outcome.retryable)
    delay = job.retry.delay(job.attempts) if state is JobState.SCHEDULED else 0.0
    if state is JobState.SCHEDULED and outcome.retry_after is not None:
        delay = max(delay, outcome.retry_after)  # the task was told when to come back (RetryAfter)
    return FailRequest(job.id, token, error, state, delay)


class OutcomeRecorder:
    """Writes each attempt's outcome with the job's lease token (see the module docstring)."""

    def __init__(
        self,
        backend: Backend,
        patience: float,
        telemetry: Telemetry,
        may_have_released: Callable[[], None] = lambda: None,
    ) -> None:
        self.backend = backend
        self.may_have_released = may_have_released
        """Called once a workflow step ended here: its commit may have released a dependent
        (a fan-in) that this node, idle meanwhile, should claim now rather than on its next
        wake-up (SQLite's watcher does not see a commit made before it started watching)."""
        self.patience = patience
        """How long a write is retried while the engine is unavailable: one lease."""
        self.telemetry = telemetry
        self.acks = CompletionBatcher(
            lambda reqs: telemetry.timed("complete_many", backend.complete_many(reqs)), self.engine
        )

    async def engine(self, call: Callable[[], Awaitable[T]]) -> T | None:
        """``call`` with the node's retry policy (``retry_engine``)."""
        return await retry_engine(call, self.patience)

    async def close(self) -> None:
        """Wait until every success handed in is written (called before the node exits)."""
        await self.acks.close()

    async def record(self, run: JobRun, outcome: Outcome) -> None:
        """Tell the engine how the attempt ended, unless the job was stopped (then hand it back)."""
        job = run.job
        run.settling = True
        base: dict[str, Any] = {"id": job.id, "task": job.task, "attempt": job.attempts, "duration": run.elapsed}
        reason = run.stop_reason
        if reason is StopReason.OVERRUN:
            # whatever the task returned once told: a cooperative task returns early on purpose
            await self._moved(run, base)
        elif outcome.kind == "stopped" or (reason is not None and reason.tells_task):
            await self._stopped(run, reason, base)
        elif outcome.kind == "succeeded":
            await self._succeeded(run, outcome, base)
        else:
            await self._failed(run, outcome, base)

    async def _stopped(self, run: JobRun, reason: StopReason | None, base: dict[str, Any]) -> None:
        """No result is recorded. A shutdown hands the job back; a cancel or lost lease needs nothing."""
        if reason is StopReason.SHUTDOWN:
            release = ReleaseRequest(run.job.id, run.lease.token)
            released = await self.engine(lambda: self.backend.release(release))
            log("job.released" if released else "job.release_refused", **base)
        else:
            log("job.stopped", logging.WARNING, reason=reason, **base)

    async def _moved(self, run: JobRun, base: dict[str, Any]) -> None:
        """An overrun: the job moves to its overflow queue, its attempt given back (``backend.move``)."""
        assert run.overrun_to is not None
        move = MoveRequest(run.job.id, run.lease.token, run.overrun_to)
        moved = await self.engine(lambda: self.telemetry.timed("move", self.backend.move(move)))
        if moved:
            log("job.moved", logging.INFO, to=run.overrun_to, queue=run.job.queue, **base)
        else:
            log("job.refused", logging.WARNING, outcome="moved", reason="lease lost", **base)

    async def _succeeded(self, run: JobRun, outcome: Outcome, base: dict[str, Any]) -> None:
        if await self.acks.complete(CompleteRequest(run.job.id, run.lease.token, outcome.result)):
            if run.job.workflow_id is not None:
                self.may_have_released()
            self.telemetry.emit(JobEnded(run.job.id, run.job.task, "succeeded", run.elapsed))
            log("job.finish", logging.DEBUG, outcome="succeeded", **base)  # counted in worker.summary
        else:
            log("job.refused", logging.WARNING, outcome="succeeded", reason="lease lost", **base)

    async def _failed(self, run: JobRun, outcome: Outcome, base: dict[str, Any]) -> None:
        fail = failure_request(run.job, run.lease.token, outcome)
        state = await self.engine(lambda: self.telemetry.timed("fail", self.backend.fail(fail)))
        if state is None:
            log("job.refused", logging.WARNING, outcome=outcome.kind, reason="lease lost", **base)
            return
        if state is JobState.FAILED:
            if run.job.workflow_id is not None:
                self.may_have_released()  # a `continue` dependent may have been released
            self.telemetry.emit(JobEnded(run.job.id, run.job.task, "failed", run.elapsed))
        else:
            self.telemetry.emit(JobEnded(run.job.id, run.job.task, "retried", run.elapsed))
        level = logging.ERROR if state is JobState.FAILED else logging.WARNING
        fields: dict[str, Any] = {
            **base,
            "error": fail.error.get("type"),
            "message": fail.error.get("message"),
            "retry_in": fail.retry_delay if state is JobState.SCHEDULED else None,
        }
        log("job.finish", level, outcome="failed" if state is JobState.FAILED else "retry", **fields)
