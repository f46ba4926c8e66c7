"""Tasks for the HTTP API tests: the server and the worker processes load ``tests.apps.api_app:app``.

The engine URL comes from $CONVEYOR_URL and the result store from $CONVEYOR_RESULTS, so one
test can point a server and a worker at the same fresh engine.
"""

from __future__ import annotations

import time

from pydantic import BaseModel, Field

from conveyor.app import Conveyor
from conveyor.context import JobContext
from conveyor.types import QueueConfig, RetryPolicy

LIMITED_DEPTH = 3
QUEUES = ("default", "limited")

app = Conveyor(queues=[QueueConfig("default"), QueueConfig("limited", max_depth=LIMITED_DEPTH)])


class ReportArgs(BaseModel):
    title: str = Field(min_length=1, max_length=100)
    rows: int = Field(ge=1, le=1000)


@app.task(name="add")
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@app.task(name="steps")
def steps(count: int, pause: float, ctx: JobContext) -> int:
    """Report progress after each of ``count`` steps of ``pause`` seconds."""
    for i in range(count):
        time.sleep(pause)
        ctx.progress((i + 1) / count, f"step {i + 1} of {count}")
    return count


@app.task(name="wait_for_cancel")
def wait_for_cancel(seconds: float, ctx: JobContext) -> str:
    """Runs until canceled (checking at safe points) or ``seconds`` pass."""
    ctx.progress(0.0, "started")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        ctx.raise_if_cancelled()
        time.sleep(0.05)
    return "finished"


@app.task(name="hold", queue="limited")
def hold(seconds: float) -> float:
    """Occupies the limited queue for a while."""
    time.sleep(seconds)
    return seconds


@app.task(name="report", args_model=ReportArgs)
def report(args: ReportArgs, ctx: JobContext) -> dict[str, object]:
    """Write a CSV artifact."""
    lines = [f"row,{args.title}"] + [f"{i},{i * i}" for i in range(args.rows)]
    ctx.save_artifact("report.csv", "\n".join(lines).encode(), "text/csv")
    return {"rows": args.rows}


@app.task(name="boom", max_attempts=1, retry=RetryPolicy(base_delay=0.1, jitter=False))
def boom(message: str) -> None:
    """Always fails (lands in the dead-letter set)."""
    raise RuntimeError(message)
