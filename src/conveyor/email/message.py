"""The notification mail of one job ending: subject and plain-text body.

Per-submit recipients (tenants) get what the job's status body shows them; the operator's
configured recipients also get the error's traceback, as configured webhook endpoints do.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from conveyor.types import Job

MAX_RESULT = 2000
"""Characters of the result shown in the body (the API has the rest)."""
VERBS = {"job.succeeded": "succeeded", "job.failed": "failed", "job.canceled": "was canceled"}


def render(job: Job, event: str, at: float, internals: bool) -> tuple[str, str]:
    """(subject, text) of the mail announcing ``event`` of ``job``."""
    verb = VERBS[event]
    subject = f"[Conveyor] {job.task} {verb} ({job.id})"
    when = datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    lines = [
        f"Job {job.id} ({job.task}) {verb} at {when}.",
        "",
        f"Queue:    {job.queue}",
        f"Attempts: {job.attempts} of {job.max_attempts}",
    ]
    if job.error:
        lines += ["", f"Error: {job.error.get('type', 'Error')}: {job.error.get('message', '')}"]
        if internals and job.error.get("traceback"):
            lines += ["", str(job.error["traceback"])]
    if job.result is not None:
        shown = json.dumps(job.result, indent=2, sort_keys=True)
        if len(shown) > MAX_RESULT:
            shown = shown[:MAX_RESULT] + "\n..."
        lines += ["", "Result:", shown]
    if job.artifacts:
        lines += ["", "Artifacts:", *(f"  {a.name} ({a.size} bytes)" for a in job.artifacts)]
    lines += ["", f"Status: GET /v1/jobs/{job.id}"]
    return subject, "\n".join(lines) + "\n"
