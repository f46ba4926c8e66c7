"""Jobs and outcomes as JSON-ready dicts, for the pipe between supervisor and executors.

Only plain JSON crosses the process boundary (never pickle): the child rebuilds a ``Job``
from the dict, so a user object can never be smuggled into the supervisor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from conveyor.records import job_from_record, job_to_record
from conveyor.types import Job

OutcomeKind = Literal["succeeded", "error", "timeout", "died", "stopped"]


def job_to_dict(job: Job) -> dict[str, Any]:
    """The job as sent to an executor: the shared record of ``conveyor.records``."""
    return job_to_record(job)


def job_from_dict(data: dict[str, Any]) -> Job:
    return job_from_record(data)


@dataclass(frozen=True)
class Outcome:
    """How one attempt ended, as seen by the supervisor.

    ``succeeded``: the task returned ``result``. ``error``: it raised (``error`` describes it,
    ``retryable`` says whether a retry may help). ``timeout``: the hard time limit killed it.
    ``died``: the executor process died under it. ``stopped``: the supervisor stopped it
    (cancel, lost lease or shutdown) and must not record a result.
    """

    kind: OutcomeKind
    result: Any = None
    error: dict[str, Any] | None = None
    retryable: bool = True
    retry_after: float | None = None
    """Seconds the task asked to wait at least before the retry (``RetryAfter``)."""


def error_dict(kind: str, message: str, traceback: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": kind, "message": message}
    if traceback:
        out["traceback"] = traceback[-8000:]
    return out
