"""Small tasks that show the machinery: a cancellable countdown and a task that fails on purpose."""

from __future__ import annotations

import time
from typing import Annotated

from pydantic import Field

from conveyor import JobContext

Seconds = Annotated[float, Field(gt=0, le=3600)]


def countdown(ctx: JobContext, seconds: Seconds = 10.0, steps: Annotated[int, Field(ge=1, le=1000)] = 10) -> str:
    """Sleep in steps, reporting progress and stopping promptly when canceled."""
    for step in range(steps):
        ctx.raise_if_cancelled()
        ctx.progress(step / steps, f"step {step + 1} of {steps}")
        time.sleep(seconds / steps)
    return f"slept {seconds:g}s"


class FlakyError(RuntimeError):
    """The failure ``flaky`` raises while it still has failures left."""


def flaky(ctx: JobContext, fail_times: Annotated[int, Field(ge=0, le=100)] = 1) -> dict[str, int]:
    """Fail the first ``fail_times`` attempts, then succeed: watch retries and the dead-letter queue.

    With ``fail_times`` at or above the task's max_attempts the job ends in ``failed``; fix it
    with ``conveyor dlq redrive`` (attempts restart at 0, so it fails again unless fail_times
    is small enough: a redrive is for after the cause is fixed).
    """
    if ctx.attempt <= fail_times:
        raise FlakyError(f"attempt {ctx.attempt} of {fail_times} planned failures")
    return {"succeeded_on_attempt": ctx.attempt}
