"""Overrun moves end to end: a job on "fast" (max_runtime 0.5 s, overflow_to "slow") that runs
longer is stopped by the fast node, moved to "slow" without charging an attempt, and the slow
node resumes it from its checkpoint; quick jobs on "fast" keep running meanwhile."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor.app import Conveyor
from conveyor.types import JobState
from tests.apps.overrun import make_app
from tests.faults.helpers import WORKER_ENGINES, Cluster, engine_cluster, wait_until

APP = "tests.apps.overrun:app"


@pytest.fixture(params=WORKER_ENGINES, ids=list(WORKER_ENGINES))
def cluster(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Cluster]:
    with engine_cluster(request.param, tmp_path) as c:
        c.app.close()
        c.app = make_app(c.url)
        yield c


def moved_events(app: Conveyor, job_id: str) -> list[dict[str, object]]:
    return [e.data for e in app.events(job_id) if e.data.get("reason") == "moved"]


def test_a_job_that_overruns_the_fast_queue_resumes_on_the_slow_queue(cluster: Cluster, tmp_path: Path) -> None:
    log = tmp_path / "pages.log"
    # the task gets the overrun grace (2 s) to see ctx.cancelled, checkpoint and return
    fast = cluster.node(app=APP, queues="fast,warm", concurrency=1, lease=5, heartbeat=1)
    warm = cluster.app.get_task("overrun.warm").enqueue()
    cluster.wait_state(warm.id, JobState.SUCCEEDED)
    job = cluster.app.get_task("overrun.pages").enqueue(count=12, seconds=0.15, log=str(log))
    fast.wait_for_log(rf"job\.moved .*to=slow .*id={job.id}")
    moved = cluster.wait_state(job.id, JobState.QUEUED)
    assert moved.queue == "slow" and moved.attempts == 0, "the move gives the attempt back"
    assert moved.checkpoint is not None and moved.checkpoint["page"] >= 1
    saved = moved.checkpoint["page"]

    # the fast node keeps serving quick jobs; the moved job waits for a slow node
    quick = cluster.app.get_task("overrun.quick").enqueue()
    assert cluster.wait_state(quick.id, JobState.SUCCEEDED).result is not None
    assert cluster.get(job.id).state is JobState.QUEUED

    cluster.node(app=APP, queues="slow", concurrency=1, lease=5, heartbeat=1)
    done = cluster.wait_state(job.id, JobState.SUCCEEDED)
    assert done.result == {"resumed_from": saved, "pages": 12}, "the slow run resumed from the checkpoint"
    assert done.attempts == 1, "max_attempts=1 and the job still ran twice: the overrun was not charged"
    assert done.queue == "slow"
    assert [(e["from"], e["to"]) for e in moved_events(cluster.app, job.id)] == [("fast", "slow")]

    lines = [line.split() for line in log.read_text().splitlines()]
    on_slow = [int(page) for _id, queue, page in lines if queue == "slow"]
    assert on_slow == list(range(saved, 12)), "the slow node did only the pages after the checkpoint"
    assert {int(page) for _id, _q, page in lines} == set(range(12))


def test_an_async_job_overruns_too(cluster: Cluster) -> None:
    cluster.node(app=APP, queues="fast,slow", concurrency=1, lease=5, heartbeat=1)
    job = cluster.app.get_task("overrun.async_pages").enqueue(count=10, seconds=0.15)
    done = cluster.wait_state(job.id, JobState.SUCCEEDED)
    assert done.queue == "slow" and done.attempts == 1
    assert done.result["resumed_from"] >= 1
    assert len(moved_events(cluster.app, job.id)) == 1


def test_a_task_expected_to_outrun_the_queue_is_submitted_to_the_overflow_queue(cluster: Cluster) -> None:
    job = cluster.app.get_task("overrun.known_slow").enqueue()
    assert job.queue == "slow"
    quick = cluster.app.get_task("overrun.quick").enqueue()
    assert quick.queue == "fast"
    cluster.node(app=APP, queues="slow", concurrency=1)
    assert cluster.wait_state(job.id, JobState.SUCCEEDED).result == "ran"
    wait_until(lambda: cluster.get(quick.id).state is JobState.QUEUED, message="the fast job to stay queued")
