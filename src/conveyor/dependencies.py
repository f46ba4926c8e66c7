"""What a step of a workflow knows about the jobs it depends on: ``ctx.dependencies``.

The worker reads every dependency once, after the claim and before the task runs, and hands
the list to the task's ``JobContext``: an async task gets it directly, a sync task in an
executor process gets it with the job over the pipe (plain JSON, like the job record). So a
step reads its parents' results without a round trip of its own, and a ``continue`` step
sees the failures and cancellations too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from conveyor.types import JobState, JSONValue

if TYPE_CHECKING:
    from conveyor.backend import Backend

FETCH_CONCURRENCY = 32
"""Reads in flight at once while fetching a fan-in's dependencies (a thousand chunks...)."""


@dataclass(frozen=True)
class Dependency:
    """One dependency of the running job as it ended (or is, for a quorum's stragglers).

    ``state`` is None when the job no longer exists (pruned); ``result`` is set when it
    succeeded, ``error`` when it failed or was canceled.
    """

    id: str
    step: str | None
    task: str | None
    state: JobState | None
    result: JSONValue = None
    error: dict[str, Any] | None = None

    @property
    def succeeded(self) -> bool:
        return self.state is JobState.SUCCEEDED

    def to_record(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "step": self.step,
            "task": self.task,
            "state": None if self.state is None else self.state.value,
            "result": self.result,
            "error": self.error,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Dependency:
        state = record.get("state")
        return cls(
            id=str(record["id"]),
            step=record.get("step"),
            task=record.get("task"),
            state=None if state is None else JobState(state),
            result=record.get("result"),
            error=record.get("error"),
        )


async def fetch_dependencies(backend: Backend, depends_on: Iterable[str]) -> list[Dependency]:
    """Read each dependency (in ``depends_on`` order), a bounded number of reads at a time."""
    ids = list(dict.fromkeys(depends_on))
    gate = asyncio.Semaphore(FETCH_CONCURRENCY)

    async def one(job_id: str) -> Dependency:
        async with gate:
            job = await backend.get(job_id)
        if job is None:
            return Dependency(job_id, None, None, None)
        return Dependency(job.id, job.step, job.task, job.state, job.result, job.error)

    return list(await asyncio.gather(*(one(i) for i in ids)))


def results_of(dependencies: Iterable[Dependency]) -> dict[str, JSONValue]:
    """The results of the succeeded dependencies, keyed by job id and by step name."""
    out: dict[str, JSONValue] = {}
    for dep in dependencies:
        if dep.succeeded:
            out[dep.id] = dep.result
            if dep.step:
                out[dep.step] = dep.result
    return out
