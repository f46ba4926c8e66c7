"""One store, one receiver and one worker node per test module and engine (the tests use distinct jobs)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from conveyor.app import Conveyor
from conveyor.types import Job, JobState
from conveyor.webhooks import WEBHOOK_QUEUE
from tests.apps.webhooks_app import make_app
from tests.engines import ENGINES, engine_url
from tests.faults.helpers import WorkerNode, wait_until
from tests.webhooks.receiver import Received, Receiver

APP = "tests.apps.webhooks_app:app"


@dataclass
class Hooks:
    app: Conveyor
    receiver: Receiver
    node: WorkerNode

    def wait_state(self, job_id: str, *states: JobState) -> Job:
        def reached() -> Job | None:
            job = self.app.get(job_id)
            return job if job is not None and job.state in states else None

        try:
            return wait_until(reached, message=f"job {job_id} to be {'/'.join(states)}")
        except pytest.fail.Exception:
            pytest.fail(f"job {job_id} is {self.app.get(job_id)}; worker log:\n{self.node.log()[-3000:]}")

    def deliveries(self, job_id: str) -> list[Job]:
        """The delivery jobs created for ``job_id`` (any state)."""
        page = self.app.list_jobs(queue=WEBHOOK_QUEUE, limit=200)
        return [j for j in page.jobs if j.args.get("job_id") == job_id]

    def settled(self, job_id: str, count: int, state: JobState = JobState.SUCCEEDED) -> list[Job]:
        """Wait until ``count`` deliveries of the job exist and all are in ``state``."""

        def done() -> list[Job] | None:
            found = self.deliveries(job_id)
            return found if len(found) == count and all(j.state is state for j in found) else None

        try:
            return wait_until(done, message=f"{count} {state} deliveries of job {job_id}")
        except pytest.fail.Exception:
            found = [(j.args["endpoint"], j.state, j.error) for j in self.deliveries(job_id)]
            pytest.fail(f"deliveries of {job_id}: {found}; worker log:\n{self.node.log()[-3000:]}")

    def received(self, path: str, job_id: str) -> list[Received]:
        return self.receiver.received(path, job_id)


def hook_node(url: str, tmp: Path, receiver: Receiver, **env: str) -> WorkerNode:
    """A worker node of the webhooks test app serving the default and delivery queues."""
    return WorkerNode(
        url,
        tmp / "logs",
        app=APP,
        queues=f"default,{WEBHOOK_QUEUE}",
        concurrency=2,
        lease=2.0,
        env={"WEBHOOK_RECEIVER": receiver.url, "CONVEYOR_RESULTS": str(tmp / "results"), **env},
    )


@pytest.fixture(scope="module", params=ENGINES, ids=list(ENGINES))
def hooks(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hooks]:
    tmp: Path = tmp_path_factory.mktemp("webhooks")
    with engine_url(request.param, tmp, private=True) as url:
        yield from _hooks(url, tmp)


def _hooks(url: str, tmp: Path) -> Iterator[Hooks]:
    receiver = Receiver().start()
    app = make_app(url, receiver.url)
    node = hook_node(url, tmp, receiver)
    try:
        node.start()
        yield Hooks(app, receiver, node)
    finally:
        node.close()
        app.close()
        receiver.stop()
