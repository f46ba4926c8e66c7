"""Turn a job row or an event row of a SQL engine into the shared dataclasses.

SQLite and PostgreSQL store the same columns (JSON as text), so one mapping serves both.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from conveyor import serde
from conveyor.types import Artifact, Job, JobEvent, JobState, RetryPolicy

Row = Mapping[str, Any]


def row_to_job(row: Row) -> Job:
    return Job(
        id=row["id"],
        task=row["task"],
        queue=row["queue"],
        tenant=row["tenant"],
        args=serde.loads(row["args"]),
        state=JobState(row["state"]),
        priority=row["priority"],
        attempts=row["attempts"],
        max_attempts=row["max_attempts"],
        timeout=row["timeout"],
        retry=RetryPolicy.from_dict(serde.loads(row["retry"])),
        run_at=row["run_at"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        lease_token=row["lease_token"],
        lease_expires_at=row["lease_expires_at"],
        worker_id=row["worker_id"],
        progress=row["progress"],
        progress_message=row["progress_message"],
        result=serde.loads(row["result"]),
        error=serde.loads(row["error"]),
        idempotency_key=row["idempotency_key"],
        depends_on=serde.loads(row["depends_on"]),
        artifacts=[Artifact.from_dict(a) for a in serde.loads(row["artifacts"])],
        callback_url=row["callback_url"],
    )


def row_to_event(row: Row) -> JobEvent:
    return JobEvent(row["seq"], row["job_id"], row["at"], row["type"], JobState(row["state"]), serde.loads(row["data"]))
