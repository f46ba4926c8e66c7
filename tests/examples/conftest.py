"""Run example task functions for real: a real app on a SQLite file, a claimed job, a JobContext.

This is the path a worker's executor takes (claim, bind the stored args, call the function
with a context holding the lease), minus the process around it, so progress, artifacts and
once-only effects go through the real engine with the real fencing token.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from conveyor.app import Conveyor
from conveyor.backend.protocol import ClaimRequest, EventsRequest
from conveyor.context import JobContext
from conveyor.types import Job, JobState
from examples import contacts, demo, report

PAGE_OBJECT = re.compile(rb"/Type\s*/Page(?![a-zA-Z])")


def pdf_page_count(data: bytes) -> int:
    """Page objects in a PDF written without object streams (as reportlab writes them)."""
    return len(PAGE_OBJECT.findall(data))


@dataclass
class Run:
    job: Job
    ctx: JobContext
    result: Any = None


class Harness:
    def __init__(self, app: Conveyor) -> None:
        self.app = app

    def run(self, task_name: str, args: dict[str, Any], *, canceled: bool = False) -> Run:
        """Enqueue, claim and run one job of ``task_name``; exceptions propagate."""
        job = self.app.enqueue(task_name, args)
        claimed = self.app.run_sync(lambda b: b.claim(ClaimRequest("examples-test", (job.queue,), 1, 60.0)))
        assert [j.id for j in claimed] == [job.id]
        stop = (lambda: "canceled") if canceled else (lambda: None)
        ctx = JobContext(self.app, claimed[0], stop)
        task = self.app.get_task(task_name)
        run = Run(claimed[0], ctx)
        try:
            run.result = task.fn(ctx, **task.bind(claimed[0].args))
        finally:
            ctx.cleanup()
        return run

    def progress(self, job_id: str) -> list[tuple[float | None, str | None]]:
        events = self.app.run_sync(lambda b: b.events(EventsRequest(job_id)))
        return [(e.data.get("fraction"), e.data.get("message")) for e in events if e.type == "progress"]

    def job(self, job_id: str) -> Job:
        job = self.app.get(job_id)
        assert job is not None and job.state is JobState.RUNNING
        return job


@pytest.fixture
def harness(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    monkeypatch.setenv("EXAMPLES_DB", str(tmp_path / "examples.db"))
    app = Conveyor(f"sqlite:///{tmp_path / 'conveyor.db'}", result_store=str(tmp_path / "results"))
    # the same registrations as examples/app.py, on a private store
    app.task(name="report", queue="reports")(report.report)
    app.task(name="import_contacts", queue="imports")(contacts.import_contacts)
    app.task(name="countdown")(demo.countdown)
    app.task(name="flaky")(demo.flaky)
    yield Harness(app)
    app.close()
