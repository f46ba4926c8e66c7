"""The app of the hostile-receiver scenario: worker nodes load ``tests.chaos.hostile_app:app``.

One endpoint per hostile behaviour (path ``/<name>`` on the receiver at $HOSTILE_RECEIVER),
each wanting only the events of task ``hostile.<name>``, so a test reads each behaviour on its
own. Deliveries: 3 attempts, 0.2 s backoff doubling, a 3 s deadline per exchange.
"""

from __future__ import annotations

import os
import time

from conveyor import RetryAfter
from conveyor.app import Conveyor
from conveyor.context import JobContext
from conveyor.types import RetryPolicy
from conveyor.webhooks import WebhookEndpoint, WebhookSettings

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
BEHAVIOURS = ("e500", "e429", "e410", "redirect", "hang", "stream", "ok")
ATTEMPTS = 3
TIMEOUT = 3.0
BACKOFF = RetryPolicy(base_delay=0.2, factor=2.0, max_delay=1.0, jitter=False)


def make_app(url: str | None = None, receiver: str | None = None) -> Conveyor:
    base = receiver or os.environ.get("HOSTILE_RECEIVER") or "http://127.0.0.1:9"
    settings = WebhookSettings(
        endpoints=tuple(
            WebhookEndpoint(f"{base}/{name}", SECRET, tasks=(f"hostile.{name}",), name=name) for name in BEHAVIOURS
        ),
        allow_private_endpoints=True,  # the test receiver is on 127.0.0.1 (explicit opt-in)
        max_attempts=ATTEMPTS,
        retry=BACKOFF,
        timeout=TIMEOUT,
    )
    app = Conveyor(url, webhooks=settings)
    for name in BEHAVIOURS:
        app.task(name=f"hostile.{name}")(_done)

    @app.task(name="plain.work")
    def work(seconds: float) -> float:
        """Ordinary work no endpoint wants: must not wait behind hostile deliveries."""
        time.sleep(seconds)
        return seconds

    @app.task(name="plain.later", retry=BACKOFF)
    def later(log: str, ctx: JobContext) -> int:
        """A sync task (executor process) told to come back later on its first attempt."""
        with open(log, "a") as out:
            out.write(f"{time.time()}\n")
        if ctx.attempt == 1:
            raise RetryAfter("the upstream asked for 2 s", 2.0)
        return ctx.attempt

    return app


def _done() -> str:
    return "done"


app = make_app()
