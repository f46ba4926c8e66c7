"""Delayed jobs and retries start at their due time, not on the 1 s promotion tick.

An idle node sleeps until the earliest due job of its queues and is woken when an earlier one
is enqueued (or a retry is scheduled). Lateness is measured with the engine's own timestamps
(``started_at - run_at``, both written by the engine), so the test does not time the machine;
the bound (``LATE``) is half the old tick, so it fails on a tick-driven start but leaves room
for a loaded machine.
"""

from __future__ import annotations

from conveyor.task import CallOptions
from conveyor.types import JobState
from tests.faults.helpers import Cluster

LATE = 0.5
"""Seconds a due job may start after its run_at (the old promotion tick was 1 s)."""
ROUNDS = 5


def _lateness(cluster: Cluster, job_id: str) -> float:
    job = cluster.wait_state(job_id, JobState.SUCCEEDED)
    assert job.started_at is not None
    return job.started_at - job.run_at


def test_delayed_jobs_start_at_their_due_time(cluster: Cluster) -> None:
    cluster.node(concurrency=4)
    warm = cluster.app.enqueue("basic.async_sleep", {"seconds": 0})
    cluster.wait_state(warm.id, JobState.SUCCEEDED)  # the node is up and idle in its wait
    late: dict[str, float] = {}
    # Each round enqueues one delayed job just after the previous one ran, while the node has
    # gone back to sleep: only a wake-up for the new earliest due job (or a wait cut to it)
    # starts it on time; a 1 s tick of random phase would make some of the rounds late.
    for _ in range(ROUNDS):
        job = cluster.app.enqueue("basic.async_sleep", {"seconds": 0}, CallOptions(delay=0.1))
        late[job.id] = _lateness(cluster, job.id)
    # Due times a quarter second apart, latest first (each one a new earliest due job).
    jobs = [
        cluster.app.enqueue("basic.async_sleep", {"seconds": 0}, CallOptions(delay=delay)) for delay in (0.8, 0.55, 0.3)
    ]
    late.update({job.id: _lateness(cluster, job.id) for job in jobs})
    assert all(-0.01 <= lag < LATE for lag in late.values()), late


def test_a_retry_starts_at_its_due_time(cluster: Cluster) -> None:
    cluster.node(concurrency=2)
    late: dict[str, float] = {}
    for _ in range(ROUNDS):  # rounds one after another, as above: a tick would be late in some
        job = cluster.app.enqueue("basic.flaky", {"fail_times": 1})  # the retry is due 0.2 s after
        late[job.id] = _lateness(cluster, job.id)
        assert cluster.get(job.id).attempts == 2
    assert all(-0.01 <= lag < LATE for lag in late.values()), late
