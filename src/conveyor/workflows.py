"""A workflow seen as a whole: the summary of the jobs that share a workflow id.

Pure: ``summarize`` turns the jobs of one workflow into a ``WorkflowStatus`` (each step with its
state, progress and dependencies, the overall state, the aggregate progress, the counts per state
and the failed steps). The app reads the jobs (``Conveyor.workflow_async``), the API, the CLI and
the dashboard only show the summary, so they all say the same thing about the same workflow.

The overall state: ``succeeded`` when every step succeeded; ``failed`` once every step ended and
at least one failed; ``canceled`` once every step ended, none failed and at least one was
canceled; else ``running`` if any step started or ended, ``pending`` if none did. Aggregate
progress counts each finished step (whatever its outcome) as 1.0 and a running step as its
reported fraction: a fan-out of 1,000 chunks shows how far the chunks are, as a whole.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from conveyor.types import TERMINAL_STATES, Job, JobState

WorkflowState = Literal["pending", "running", "succeeded", "failed", "canceled"]
TERMINAL_WORKFLOW_STATES: frozenset[str] = frozenset({"succeeded", "failed", "canceled"})


@dataclass(frozen=True)
class WorkflowStep:
    """One job of the workflow, as the workflow views show it."""

    id: str
    step: str | None
    task: str
    state: JobState
    progress: float | None
    progress_message: str | None
    depends_on: list[str]
    layer: int
    """0 for a step without dependencies inside the workflow; else 1 + the deepest of them (for drawing)."""
    attempts: int
    max_attempts: int
    error: dict[str, Any] | None
    result: Any
    created_at: float
    started_at: float | None
    finished_at: float | None

    @property
    def name(self) -> str:
        """The step name, or the job id for a step enqueued without one."""
        return self.step or self.id

    @property
    def done(self) -> float:
        """This step's share of the aggregate progress: 1.0 once it ended, its fraction while it runs."""
        if self.state in TERMINAL_STATES:
            return 1.0
        if self.state is JobState.RUNNING:
            return min(1.0, max(0.0, self.progress or 0.0))
        return 0.0


@dataclass(frozen=True)
class WorkflowStatus:
    """Everything the views show of one workflow."""

    id: str
    state: WorkflowState
    steps: list[WorkflowStep]
    progress: float
    """0..1: finished steps count 1.0, running ones their reported fraction, the rest 0."""
    counts: dict[str, int] = field(default_factory=dict)
    """Steps per job state; every state is a key."""
    failed: list[WorkflowStep] = field(default_factory=list)
    """The steps that failed (not those canceled because of them)."""
    created_at: float = 0.0
    finished_at: float | None = None

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL_WORKFLOW_STATES

    def step(self, name: str) -> WorkflowStep:
        """The step named ``name`` (step name or job id); KeyError when there is none."""
        for item in self.steps:
            if name in (item.step, item.id):
                return item
        raise KeyError(name)


def overall_state(states: Iterable[JobState]) -> WorkflowState:
    """The workflow's state from its steps' states (see the module docstring)."""
    seen = list(states)
    if not seen:
        return "pending"
    if all(s in TERMINAL_STATES for s in seen):
        if all(s is JobState.SUCCEEDED for s in seen):
            return "succeeded"
        return "failed" if JobState.FAILED in seen else "canceled"
    started = {JobState.RUNNING, *TERMINAL_STATES}
    return "running" if any(s in started for s in seen) else "pending"


def _layers(jobs: list[Job]) -> dict[str, int]:
    """Depth of each job in the dependency graph restricted to the workflow (ids sort by creation,
    and a job can only depend on one created before it, so one pass in id order suffices)."""
    layer: dict[str, int] = {}
    for job in sorted(jobs, key=lambda j: j.id):
        inside = [layer[d] for d in job.depends_on if d in layer]
        layer[job.id] = 1 + max(inside) if inside else 0
    return layer


def summarize(workflow_id: str, jobs: Iterable[Job]) -> WorkflowStatus:
    """The summary of the workflow ``workflow_id`` from its jobs (any order)."""
    ordered = sorted(jobs, key=lambda j: j.id)
    layers = _layers(ordered)
    steps = [
        WorkflowStep(
            id=j.id,
            step=j.step,
            task=j.task,
            state=j.state,
            progress=j.progress,
            progress_message=j.progress_message,
            depends_on=list(j.depends_on),
            layer=layers[j.id],
            attempts=j.attempts,
            max_attempts=j.max_attempts,
            error=None if j.state is JobState.SUCCEEDED else j.error,
            result=j.result,
            created_at=j.created_at,
            started_at=j.started_at,
            finished_at=j.finished_at,
        )
        for j in ordered
    ]
    counts = {s.value: 0 for s in JobState}
    for s in steps:
        counts[s.state.value] += 1
    state = overall_state(s.state for s in steps)
    progress = sum(s.done for s in steps) / len(steps) if steps else 0.0
    finished = [s.finished_at for s in steps if s.finished_at is not None]
    return WorkflowStatus(
        id=workflow_id,
        state=state,
        steps=steps,
        progress=round(progress, 6),
        counts=counts,
        failed=[s for s in steps if s.state is JobState.FAILED],
        created_at=min((s.created_at for s in steps), default=0.0),
        finished_at=max(finished) if state in TERMINAL_WORKFLOW_STATES and finished else None,
    )
