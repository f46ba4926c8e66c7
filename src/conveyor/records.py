"""The one mapping between a ``Job`` and a flat record of plain values.

Every place that stores or ships a job (the SQL engines' rows, the Redis hash, the pipe to an
executor process) goes through ``job_to_record`` / ``job_from_record``, so a new field or a new
default is added once. Engines that store JSON columns as text (SQLite, PostgreSQL, Redis) pass
``encoded=True``: JSON fields are then decoded, and numbers stored as strings (Redis) are
converted. A field missing from the record takes the Job's own default.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from conveyor import serde
from conveyor.types import Artifact, DependencyPolicy, Job, JobState, RetryPolicy

JSON_FIELDS = frozenset({"args", "retry", "result", "error", "depends_on", "artifacts", "trace_context", "checkpoint"})
"""Fields whose value is structured: JSON text in the engines, plain JSON values in a record."""
FLOAT_FIELDS = frozenset(
    {
        "timeout",
        "run_at",
        "created_at",
        "updated_at",
        "started_at",
        "finished_at",
        "lease_expires_at",
        "progress",
        "rate_period",
    }
)
INT_FIELDS = frozenset({"priority", "attempts", "max_attempts", "quorum", "concurrency_limit", "rate_limit"})
JOB_FIELDS = tuple(f.name for f in dataclasses.fields(Job))


def job_to_record(job: Job) -> dict[str, Any]:
    """Every field of ``job`` as a JSON-ready value (the executor pipe's format)."""
    record = {name: getattr(job, name) for name in JOB_FIELDS}
    record["state"] = job.state.value
    record["on_dependency_failure"] = job.on_dependency_failure.value
    record["retry"] = job.retry.to_dict()
    record["depends_on"] = list(job.depends_on)
    record["artifacts"] = [a.to_dict() for a in job.artifacts]
    return record


def job_from_record(record: Mapping[str, Any], *, encoded: bool = False) -> Job:
    """The Job a record describes; ``encoded``: JSON fields are text and numbers may be strings."""
    values: dict[str, Any] = {}
    present = set(record.keys())  # a sqlite3.Row answers ``in`` by value, not by key
    for name in JOB_FIELDS:
        if name not in present:
            continue
        value = record[name]
        if encoded:
            value = _decode(name, value)
        values[name] = value
    values["state"] = JobState(values["state"])
    values["on_dependency_failure"] = DependencyPolicy(values.get("on_dependency_failure") or DependencyPolicy.CANCEL)
    values["retry"] = RetryPolicy.from_dict(values.get("retry"))
    values["depends_on"] = list(values.get("depends_on") or [])
    values["artifacts"] = [Artifact.from_dict(a) for a in values.get("artifacts") or []]
    if values.get("args") is None:
        values["args"] = {}
    return Job(**values)


def _decode(name: str, value: Any) -> Any:
    if name in JSON_FIELDS:
        return None if value is None or value == "" else serde.loads(value)
    if isinstance(value, str):
        if name in FLOAT_FIELDS:
            return None if value == "" else float(value)
        if name in INT_FIELDS:
            return None if value == "" else int(float(value))
    return value
