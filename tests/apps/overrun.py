"""Tasks for the overrun-move tests: a "fast" queue with a short max_runtime that overflows to
"slow", and a task that checkpoints each page so the slow queue resumes where it stopped.

Worker nodes load ``tests.apps.overrun:app`` (engine URL from $CONVEYOR_URL); the test process
calls ``make_app(url)`` for an app bound to its own store.
"""

from __future__ import annotations

import os
import time
from typing import Any

from conveyor.app import Conveyor
from conveyor.context import JobContext
from conveyor.types import QueueConfig

MAX_RUNTIME = 0.5


def make_app(url: str | None = None) -> Conveyor:
    app = Conveyor(url, queues=[QueueConfig("fast", max_runtime=MAX_RUNTIME, overflow_to="slow")])

    @app.task(name="overrun.pages", queue="fast", max_attempts=1)
    def pages(ctx: JobContext, count: int, seconds: float, log: str) -> dict[str, Any]:
        """Process ``count`` pages of ``seconds`` each, checkpointing after every page."""
        start = int((ctx.resume_state or {}).get("page", 0))
        for page in range(start, count):
            if ctx.cancelled:  # moving to the slow queue: the checkpoint is already stored
                return {"stopped_at": page}
            time.sleep(seconds)
            ctx.checkpoint({"page": page + 1})
            with open(log, "a") as handle:
                handle.write(f"{ctx.job_id} {ctx.job.queue} {page}\n")
        return {"resumed_from": start, "pages": count}

    @app.task(name="overrun.async_pages", queue="fast", max_attempts=1)
    async def async_pages(ctx: JobContext, count: int, seconds: float) -> dict[str, Any]:
        import asyncio

        start = int((ctx.resume_state or {}).get("page", 0))
        for page in range(start, count):
            if ctx.cancelled:
                return {"stopped_at": page}
            await asyncio.sleep(seconds)
            await ctx.checkpoint_async({"page": page + 1})
        return {"resumed_from": start, "pages": count}

    @app.task(name="overrun.warm", queue="warm")
    def warm(ctx: JobContext) -> None:
        """Opens the executor's engine connection (a long-lived executor's steady state), on a
        queue without max_runtime, so a loaded machine's slow first connect is not an overrun."""
        ctx.progress(None, "warm")

    @app.task(name="overrun.quick", queue="fast")
    def quick() -> int:
        return os.getpid()

    @app.task(name="overrun.known_slow", queue="fast", expected_runtime=30.0)
    def known_slow() -> str:
        return "ran"

    return app


app = make_app()
