"""The app of the dashboard browser tests (``tests.security.dashboard_app:app``).

``boom`` dead-letters at once with a message and a traceback; ``progress`` waits for a file the
test creates once the page is open, then reports fractions whose float sums are not round
(0.15 * 3 == 0.44999999999999996), as a real task's arithmetic does.
"""

from __future__ import annotations

import time
from pathlib import Path

from conveyor.app import Conveyor
from conveyor.context import JobContext
from conveyor.types import QueueConfig

STEPS = 6

app = Conveyor(queues=[QueueConfig("default")])


@app.task(name="boom", max_attempts=1)
def boom(message: str) -> None:
    raise ValueError(message)


@app.task(name="progress")
def progress(go: str, ctx: JobContext) -> int:
    deadline = time.monotonic() + 120
    while not Path(go).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    for step in range(1, STEPS + 1):
        ctx.progress(0.15 * step, f"step {step}")
    return STEPS


@app.task(name="cleanup")
def cleanup() -> None:
    """Declared with a schedule whose name is markup: the schedules page shows it as text."""


app.schedule(cleanup, "0 3 * * *", tz="Asia/Tokyo", name="nightly <b>cleanup</b>")
