"""Tasks for the idempotent-replay tests: ``conveyor serve --app tests.api.replay_app:app``.

``flaky`` fails its first attempt and succeeds on the retry, so its run_at and state both move
after the first 202; ``echo`` is the dependent a test enqueues with ``depends_on``.
"""

from __future__ import annotations

from conveyor.app import Conveyor
from conveyor.context import JobContext
from conveyor.types import RetryPolicy

app = Conveyor()


@app.task(name="flaky", max_attempts=3, retry=RetryPolicy(base_delay=0.05, jitter=False))
def flaky(n: int, ctx: JobContext) -> int:
    if ctx.attempt == 1:
        raise RuntimeError("first attempt fails")
    return n


@app.task(name="echo")
def echo(text: str) -> str:
    return text
