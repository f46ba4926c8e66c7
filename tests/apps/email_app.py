"""Tasks for the email notification tests: nodes and servers load ``tests.apps.email_app:app``.

The SMTP server comes from $CONVEYOR_SMTP_URL (each test starts its own recorder; the worker
gets it through ``--smtp-url``). "ops@example.com" is told of every ending of ``mail.boom``;
submitters name their own recipients per job (``notify``). With $EMAIL_TEST_KILL_AFTER_COMPLETE
the process SIGKILLs itself right after a job's end committed (as in webhooks_app).
"""

from __future__ import annotations

import os
import signal

from conveyor.app import Conveyor
from conveyor.email import EmailSettings
from conveyor.telemetry import EngineCall, Event
from conveyor.types import RetryPolicy

OPS = "ops@example.com"
FAST = RetryPolicy(base_delay=0.2, factor=2.0, max_delay=1.0, jitter=False)


def make_app(url: str | None = None, smtp_url: str | None = None) -> Conveyor:
    settings = EmailSettings(
        smtp_url=smtp_url, sender="jobs@example.com", recipients=(OPS,), tasks=("mail.boom",), retry=FAST
    )
    app = Conveyor(url, email=settings)
    if os.environ.get("EMAIL_TEST_KILL_AFTER_COMPLETE"):
        app.telemetry.attach(_kill_after_complete)

    @app.task(name="mail.ok")
    def ok(value: int) -> dict[str, int]:
        return {"double": value * 2}

    @app.task(name="mail.boom", max_attempts=1)
    def boom(message: str) -> None:
        raise ValueError(message)

    return app


def _kill_after_complete(event: Event) -> None:
    if isinstance(event, EngineCall) and event.operation == "complete_many" and event.error_type is None:
        os.kill(os.getpid(), signal.SIGKILL)


app = make_app()
