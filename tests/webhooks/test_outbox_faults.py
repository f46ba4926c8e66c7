"""A notification survives a crash between the job's end and its delivery (the outbox).

The first node runs the job and SIGKILLs itself right after the engine returned from the
``complete_many`` that committed the end (the test app's fault hook on the telemetry seam),
so no delivery job exists yet. The end and its outbox entry committed together; a second node
started later finds the entry and the receiver gets the notification like any other: signed,
with the delivery job's id as ``webhook-id``. Runs on every engine of $CONVEYOR_WORKER_ENGINES.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from conveyor.types import JobState
from conveyor.webhooks import WEBHOOK_QUEUE
from tests.apps.webhooks_app import SECRET, make_app
from tests.engines import engine_url
from tests.faults.helpers import WORKER_ENGINES, WorkerNode, wait_until
from tests.webhooks.conftest import APP, hook_node
from tests.webhooks.receiver import Receiver

pytestmark = pytest.mark.faults


@pytest.mark.parametrize("engine", WORKER_ENGINES)
def test_a_node_killed_right_after_a_job_ended_loses_no_notification(engine: str, tmp_path: Path) -> None:
    with engine_url(engine, tmp_path) as url:
        receiver = Receiver().start()
        app = make_app(url, receiver.url)
        env = {"WEBHOOK_RECEIVER": receiver.url, "CONVEYOR_RESULTS": str(tmp_path / "results")}
        crashing = WorkerNode(
            url, tmp_path / "logs", app=APP, queues="default", env={**env, "WEBHOOK_TEST_KILL_AFTER_COMPLETE": "1"}
        )
        rescuer = hook_node(url, tmp_path, receiver)
        try:
            job = app.enqueue("hooks.ok", {"value": 4})
            crashing.start()
            assert crashing.wait() == -signal.SIGKILL, crashing.log()[-3000:]

            ended = app.get(job.id)
            assert ended is not None and ended.state is JobState.SUCCEEDED  # the end committed...
            assert app.list_jobs(queue=WEBHOOK_QUEUE).jobs == []  # ...and nothing announced it yet
            assert receiver.received("/main", job.id) == []

            rescuer.start()
            [request] = wait_until(lambda: receiver.received("/main", job.id), message="the notification")
            payload = request.verify(SECRET)
            assert payload["type"] == "job.succeeded"
            assert (payload["data"]["id"], payload["data"]["result"]) == (job.id, {"double": 8})

            def delivered() -> list[str] | None:
                jobs = app.list_jobs(queue=WEBHOOK_QUEUE).jobs
                done = [j.id for j in jobs if j.state is JobState.SUCCEEDED]
                return done if done and len(done) == len(jobs) else None

            assert wait_until(delivered, message="the delivery job to succeed") == [request.headers["webhook-id"]]
        finally:
            crashing.close()
            rescuer.close()
            app.close()
            receiver.stop()
