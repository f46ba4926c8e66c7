"""The mixed-duration benchmark's app (``bench.mixed``): short jobs and long jobs on "fast".

Sync tasks only, so a node claims no more jobs than it has executors and a job's ``started_at``
is when it really started: its queue wait is ``started_at - created_at`` on the engine clock.
The long task checkpoints every step, so after an overrun move the slow node resumes it.
"""

from __future__ import annotations

import os
import time
from typing import Any

from conveyor.app import Conveyor
from conveyor.context import JobContext

STEP = 0.1


def make_app(url: str | None = None) -> Conveyor:
    app = Conveyor(url or os.environ.get("BENCH_URL") or "sqlite:///var/bench-mixed.db")

    @app.task(name="mixed.short", queue="fast")
    def short(seconds: float) -> None:
        time.sleep(seconds)

    @app.task(name="mixed.warm", queue="warm")
    def warm(ctx: JobContext, seconds: float) -> None:
        """Warm-up: boots an executor and opens its engine connection (as a long-lived one has),
        on a queue without max_runtime, so a slow first connect on a loaded machine is no overrun."""
        ctx.checkpoint({"warm": True})
        time.sleep(seconds)

    def run_long(ctx: JobContext, seconds: float) -> dict[str, Any]:
        start = int((ctx.resume_state or {}).get("step", 0))
        steps = round(seconds / STEP)
        for step in range(start, steps):
            if ctx.cancelled:
                return {"stopped_at": step}
            time.sleep(STEP)
            ctx.checkpoint({"step": step + 1})
        return {"resumed_from": start, "steps": steps}

    @app.task(name="mixed.long", queue="fast")
    def long(ctx: JobContext, seconds: float) -> dict[str, Any]:
        """A long job nobody declared: it lands on "fast" and overruns there."""
        return run_long(ctx, seconds)

    @app.task(name="mixed.long_declared", queue="fast", expected_runtime=3600.0)
    def long_declared(ctx: JobContext, seconds: float) -> dict[str, Any]:
        """A long job declared up front (expected_runtime): submitted straight to "slow"."""
        return run_long(ctx, seconds)

    return app


app = make_app()
