"""Run an ``async def`` task in the supervisor's event loop, with the same semantics as a child.

Time limit and stop are enforced with ``Task.cancel()``: a coroutine cannot be killed like a
process, so one that swallows CancelledError keeps running detached, but its result is never
recorded.
"""

from __future__ import annotations

import asyncio
import traceback
from dataclasses import replace
from typing import Any

import pydantic

from conveyor import serde
from conveyor.app import Conveyor
from conveyor.context import JobContext
from conveyor.task import Task
from conveyor.worker.codec import Outcome, error_dict
from conveyor.worker.errors import DoNotRetry, RetryAfter
from conveyor.worker.jobrun import JobRun

CANCEL_WAIT = 1.0


def _failure(exc: BaseException, retryable: bool) -> Outcome:
    tb = "".join(traceback.format_exception(exc))
    return Outcome("error", error=error_dict(type(exc).__name__, str(exc), tb), retryable=retryable)


def _outcome_of(done: asyncio.Task[Any]) -> Outcome:
    exc = done.exception()
    if exc is None:
        value = done.result()
        try:
            serde.dumps(value)
        except TypeError as err:
            error = error_dict("ResultNotSerializable", f"task returned a value JSON cannot hold: {err}")
            return Outcome("error", error=error, retryable=False)
        return Outcome("succeeded", result=value)
    outcome = _failure(exc, retryable=not isinstance(exc, DoNotRetry))
    return replace(outcome, retry_after=exc.seconds) if isinstance(exc, RetryAfter) else outcome


async def _cancel(task: asyncio.Task[Any]) -> None:
    task.cancel()
    await asyncio.wait({task}, timeout=CANCEL_WAIT)
    if task.done() and not task.cancelled():
        task.exception()  # retrieved, so asyncio does not warn


async def run_async_task(app: Conveyor, task: Task, run: JobRun, stop_grace: float) -> Outcome:
    job = run.job
    try:
        kwargs = task.bind(job.args)
    except pydantic.ValidationError as exc:
        return _failure(exc, retryable=False)
    ctx = JobContext(app, job, run.task_stop_reason, run.dependencies)
    if task.takes_context:
        kwargs["ctx"] = ctx
    work = asyncio.ensure_future(task.fn(**kwargs))
    stop_wait = asyncio.ensure_future(run.stopped.wait())
    try:
        await asyncio.wait({work, stop_wait}, timeout=job.timeout, return_when=asyncio.FIRST_COMPLETED)
        if work.done():
            return Outcome("stopped") if work.cancelled() else _outcome_of(work)
        if run.stopped.is_set():
            told = run.task_stop_reason()
            if told is not None and stop_grace > 0:
                await asyncio.wait({work}, timeout=told.grace(stop_grace))
            if not work.done():
                await _cancel(work)
            elif not work.cancelled():
                work.exception()
            return Outcome("stopped")
        await _cancel(work)
        timeout = job.timeout or 0
        return Outcome("timeout", error=error_dict("TimeLimitExceeded", f"timed out after {timeout:g} s"))
    except asyncio.CancelledError:
        await _cancel(work)
        raise
    finally:
        stop_wait.cancel()
        ctx.cleanup()
