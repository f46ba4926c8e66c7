"""The app of the security tests: ``conveyor serve --app tests.security.secure_app:app``.

One configured endpoint whose URL carries a token (``?token=...``) and has no explicit name,
per-submit callbacks with private addresses refused (the default), and the operator's opt-in
``allow_private_endpoints`` (the test receiver is on 127.0.0.1; $SECURITY_RECEIVER is its URL).
"""

from __future__ import annotations

import os
from typing import Any

from conveyor.app import Conveyor
from conveyor.context import JobContext
from conveyor.types import QueueConfig, RetryPolicy
from conveyor.webhooks import WebhookEndpoint, WebhookSettings

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
CALLBACK_SECRET = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
URL_TOKEN = "tok-3f9a1c7e"
RECEIVER = os.environ.get("SECURITY_RECEIVER", "http://127.0.0.1:9")
# explicit operator opt-in: the receiver is on loopback (looked up so that this module also loads
# on the code before the setting existed, where each test must fail on its own merits)
OPT_IN = {"allow_private_endpoints": True} if "allow_private_endpoints" in WebhookSettings.__dataclass_fields__ else {}
FAST = RetryPolicy(base_delay=0.2, factor=2.0, max_delay=0.5, jitter=False)

app = Conveyor(
    queues=[QueueConfig("default"), QueueConfig("reports")],
    webhooks=WebhookSettings(
        endpoints=(WebhookEndpoint(f"{RECEIVER}/ops?token={URL_TOKEN}", SECRET, tasks=("ok", "refused")),),
        callback_secret=CALLBACK_SECRET,
        **OPT_IN,  # type: ignore[arg-type]
        max_attempts=2,
        retry=FAST,
        timeout=5.0,
    ),
)


@app.task(name="ok")
def ok(value: int) -> int:
    return value


@app.task(name="refused")
def refused(value: int) -> int:
    """Its delivery is answered 500 with a body that must never reach a tenant."""
    return value


@app.task(name="boom", max_attempts=1)
def boom(message: str) -> None:
    raise RuntimeError(message)


@app.task(name="artifact", queue="reports")
def artifact(ctx: JobContext) -> str:
    ctx.save_artifact("page.html", b"<script>alert(1)</script>", "text/html")
    return "saved"


@app.task(name="echo")
def echo(data: Any = None) -> Any:
    return data


@app.task(name="named_artifact", queue="reports")
def named_artifact(ctx: JobContext, name: str) -> str:
    ctx.save_artifact(name, name.encode(), "text/plain; charset=utf-8")
    return name
