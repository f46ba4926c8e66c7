"""Jobs and outcomes as JSON-ready dicts, for the pipe between supervisor and executors.

Only plain JSON crosses the process boundary (never pickle): the child rebuilds a ``Job``
from the dict, so a user object can never be smuggled into the supervisor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from conveyor.types import Artifact, Job, JobState, RetryPolicy

OutcomeKind = Literal["succeeded", "error", "timeout", "died", "stopped"]


def job_to_dict(job: Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "task": job.task,
        "queue": job.queue,
        "args": job.args,
        "state": job.state.value,
        "tenant": job.tenant,
        "priority": job.priority,
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "timeout": job.timeout,
        "retry": job.retry.to_dict(),
        "run_at": job.run_at,
        "created_at": job.created_at,
        "updated_at": job.updated_at,
        "started_at": job.started_at,
        "lease_token": job.lease_token,
        "lease_expires_at": job.lease_expires_at,
        "worker_id": job.worker_id,
        "idempotency_key": job.idempotency_key,
        "depends_on": list(job.depends_on),
        "artifacts": [a.to_dict() for a in job.artifacts],
    }


def job_from_dict(data: dict[str, Any]) -> Job:
    return Job(
        id=data["id"],
        task=data["task"],
        queue=data["queue"],
        args=data["args"],
        state=JobState(data["state"]),
        tenant=data["tenant"],
        priority=data["priority"],
        attempts=data["attempts"],
        max_attempts=data["max_attempts"],
        timeout=data["timeout"],
        retry=RetryPolicy.from_dict(data["retry"]),
        run_at=data["run_at"],
        created_at=data["created_at"],
        updated_at=data["updated_at"],
        started_at=data["started_at"],
        lease_token=data["lease_token"],
        lease_expires_at=data["lease_expires_at"],
        worker_id=data["worker_id"],
        idempotency_key=data["idempotency_key"],
        depends_on=list(data["depends_on"]),
        artifacts=[Artifact.from_dict(a) for a in data["artifacts"]],
    )


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


def error_dict(kind: str, message: str, traceback: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": kind, "message": message}
    if traceback:
        out["traceback"] = traceback[-8000:]
    return out
