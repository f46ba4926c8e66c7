"""The typed telemetry seam: handlers get typed events, a failing handler never breaks a caller."""

from __future__ import annotations

import pytest

from conveyor.metrics import JOBS_FINISHED, prometheus_handler
from conveyor.telemetry import EngineCall, Event, JobEnded, JobsSubmitted, Telemetry
from conveyor.types import Job, JobState


def job(task: str = "t") -> Job:
    return Job(id="j1", task=task, queue="default", args={}, state=JobState.QUEUED)


async def test_handlers_get_typed_events_until_detached() -> None:
    telemetry = Telemetry()
    seen: list[Event] = []
    detach = telemetry.attach(seen.append)
    telemetry.submitted([job(), job()], [True, False])  # the replay is not a submit
    assert await telemetry.timed("get", _answer(7)) == 7
    with pytest.raises(KeyError):
        await telemetry.timed("get", _raise())
    detach()
    telemetry.emit(JobEnded("j1", "t", "succeeded"))
    assert [type(e) for e in seen] == [JobsSubmitted, EngineCall, EngineCall]
    assert isinstance(seen[0], JobsSubmitted) and len(seen[0].jobs) == 1
    assert isinstance(seen[2], EngineCall) and (seen[2].operation, seen[2].error_type) == ("get", "KeyError")


def test_a_failing_handler_is_logged_and_the_others_still_run(caplog: pytest.LogCaptureFixture) -> None:
    telemetry = Telemetry()
    seen: list[Event] = []

    def broken(event: Event) -> None:
        raise RuntimeError("bug in a handler")

    telemetry.attach(broken)
    telemetry.attach(seen.append)
    telemetry.emit(JobEnded("j1", "t", "retried", 0.5))
    assert len(seen) == 1 and not seen[0].terminal  # type: ignore[union-attr]
    assert "bug in a handler" in caplog.text


def test_the_prometheus_handler_counts_ends_by_task_and_outcome() -> None:
    counter = JOBS_FINISHED.labels("telemetry.test", "failed")
    before = counter._value.get()
    prometheus_handler(JobEnded("j1", "telemetry.test", "failed", 1.0))
    assert counter._value.get() == before + 1


async def _answer(value: int) -> int:
    return value


async def _raise() -> int:
    raise KeyError("x")
