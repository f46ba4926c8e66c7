"""Tasks for the webhook tests: worker nodes load ``tests.apps.webhooks_app:app``.

The receiver's base URL comes from $WEBHOOK_RECEIVER (each test starts its own receiver on a
free port); the test process calls ``make_app(url, receiver)`` for the same configuration.
Endpoint "main" gets every event of the ``hooks.*`` tasks, "flaky" only those of
``hooks.flaky``, "down" only those of ``hooks.unlucky``: each test reads its own path.
Queue "tiny" holds one pending job at most (a submit past it is refused).

Fault hook: with $WEBHOOK_TEST_KILL_AFTER_COMPLETE set, the process SIGKILLs itself as soon as
an engine ``complete_many`` call returned, i.e. right after a job's end committed and before
anything else (its outbox consumer included) could act on it. It hooks in through the public
telemetry seam (``app.telemetry``), so the product code has no fault switch.
"""

from __future__ import annotations

import os
import signal
import time

from conveyor.app import Conveyor
from conveyor.context import JobContext
from conveyor.telemetry import EngineCall, Event
from conveyor.types import QueueConfig, RetryPolicy
from conveyor.webhooks import WebhookEndpoint, WebhookSettings

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
CALLBACK_SECRET = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
FAST = RetryPolicy(base_delay=0.2, factor=2.0, max_delay=1.0, jitter=False)
DELIVERY_ATTEMPTS = 4


def make_app(url: str | None = None, receiver: str | None = None) -> Conveyor:
    base = receiver or os.environ.get("WEBHOOK_RECEIVER") or "http://127.0.0.1:9"
    settings = WebhookSettings(
        endpoints=(
            WebhookEndpoint(f"{base}/main", SECRET, tasks=("hooks.ok", "hooks.boom", "hooks.wait"), name="main"),
            WebhookEndpoint(f"{base}/flaky", SECRET, events=("job.succeeded",), tasks=("hooks.flaky",), name="flaky"),
            WebhookEndpoint(f"{base}/down", SECRET, tasks=("hooks.unlucky",), name="down"),
        ),
        callback_secret=CALLBACK_SECRET,
        # the test receiver is on 127.0.0.1: both opt-ins are explicit, never the default
        allow_private_callbacks=True,
        allow_private_endpoints=True,
        max_attempts=DELIVERY_ATTEMPTS,
        retry=FAST,
        timeout=5.0,
    )
    app = Conveyor(url, webhooks=settings, queues=[QueueConfig("tiny", max_depth=1)])
    if os.environ.get("WEBHOOK_TEST_KILL_AFTER_COMPLETE"):
        app.telemetry.attach(_kill_after_complete)

    @app.task(name="hooks.ok")
    def ok(value: int) -> dict[str, int]:
        return {"double": value * 2}

    @app.task(name="hooks.boom", max_attempts=2, retry=FAST)
    def boom(message: str) -> None:
        raise ValueError(message)

    @app.task(name="hooks.wait")
    def wait(seconds: float, ctx: JobContext) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not ctx.cancelled:
            time.sleep(0.05)

    @app.task(name="hooks.flaky")
    def flaky() -> str:
        return "done"

    @app.task(name="hooks.unlucky")
    def unlucky() -> str:
        return "done"

    @app.task(name="hooks.plain")
    def plain(value: int) -> int:
        """No configured endpoint wants it: only a per-submit callback announces it."""
        return value

    return app


def _kill_after_complete(event: Event) -> None:
    if isinstance(event, EngineCall) and event.operation == "complete_many" and event.error_type is None:
        os.kill(os.getpid(), signal.SIGKILL)


app = make_app()
