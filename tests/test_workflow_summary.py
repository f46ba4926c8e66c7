"""conveyor.workflows.summarize: the one summary the API, the CLI and the dashboard show (pure, no engine)."""

from __future__ import annotations

import pytest

from conveyor.types import Job, JobState
from conveyor.workflows import overall_state, summarize


def job(n: int, state: JobState, *deps: int, progress: float | None = None, step: str | None = None) -> Job:
    return Job(
        id=f"job-{n:03d}",
        task="t",
        queue="default",
        args={},
        state=state,
        depends_on=[f"job-{d:03d}" for d in deps],
        progress=progress,
        step=step,
        workflow_id="wf",
        created_at=100.0 + n,
        finished_at=200.0 + n if state in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELED) else None,
        error={"type": "ValueError", "message": "bad"} if state is JobState.FAILED else None,
    )


@pytest.mark.parametrize(
    ("states", "expected"),
    [
        ([], "pending"),
        ([JobState.QUEUED, JobState.WAITING], "pending"),
        ([JobState.SCHEDULED, JobState.RUNNING], "running"),
        ([JobState.SUCCEEDED, JobState.WAITING], "running"),
        ([JobState.SUCCEEDED, JobState.SUCCEEDED], "succeeded"),
        ([JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELED], "failed"),
        ([JobState.SUCCEEDED, JobState.CANCELED], "canceled"),
        ([JobState.FAILED, JobState.RUNNING], "running"),
    ],
)
def test_overall_state(states: list[JobState], expected: str) -> None:
    assert overall_state(states) == expected


def test_aggregate_progress_counts_finished_steps_whole_and_running_ones_by_fraction() -> None:
    jobs = [
        job(1, JobState.SUCCEEDED),
        job(2, JobState.FAILED),
        job(3, JobState.RUNNING, progress=0.5),
        job(4, JobState.RUNNING),  # no progress reported yet
        job(5, JobState.QUEUED, progress=0.9),  # not running: a stale fraction does not count
    ]
    wf = summarize("wf", reversed(jobs))
    assert wf.progress == pytest.approx((1 + 1 + 0.5 + 0 + 0) / 5)
    assert [s.id for s in wf.steps] == [j.id for j in jobs]  # oldest first, whatever the input order
    assert wf.counts["succeeded"] == 1 and wf.counts["running"] == 2 and sum(wf.counts.values()) == 5
    assert set(wf.counts) == {s.value for s in JobState}
    assert [s.id for s in wf.failed] == ["job-002"]
    assert wf.state == "running" and wf.finished_at is None


def test_layers_follow_the_deepest_dependency_inside_the_workflow() -> None:
    jobs = [
        job(1, JobState.SUCCEEDED, step="a"),
        job(2, JobState.SUCCEEDED, 1, step="b"),
        job(3, JobState.SUCCEEDED, 1, step="c"),
        job(4, JobState.SUCCEEDED, 2, 1, step="d"),
        job(5, JobState.SUCCEEDED, 999, step="outside"),  # a dependency outside the workflow
    ]
    wf = summarize("wf", jobs)
    assert {s.name: s.layer for s in wf.steps} == {"a": 0, "b": 1, "c": 1, "d": 2, "outside": 0}
    assert wf.step("d").depends_on == ["job-002", "job-001"]
    assert wf.state == "succeeded" and wf.progress == 1.0 and wf.terminal
    assert wf.finished_at == 205.0 and wf.created_at == 101.0


def test_an_empty_workflow_is_pending_with_no_progress() -> None:
    wf = summarize("wf", [])
    assert wf.state == "pending" and wf.progress == 0.0 and wf.steps == [] and not wf.terminal
