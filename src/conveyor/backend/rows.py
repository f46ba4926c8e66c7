"""Turn a job row or an event row of a SQL engine into the shared dataclasses.

SQLite and PostgreSQL store the same columns (JSON as text), so one mapping serves both.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from conveyor import serde
from conveyor.records import job_from_record
from conveyor.types import Job, JobEvent, JobState

Row = Mapping[str, Any]


def row_to_job(row: Row) -> Job:
    """A job row (JSON columns as text) as a Job: the shared mapping of ``conveyor.records``."""
    return job_from_record(row, encoded=True)


def row_to_event(row: Row) -> JobEvent:
    return JobEvent(row["seq"], row["job_id"], row["at"], row["type"], JobState(row["state"]), serde.loads(row["data"]))
