"""Worker faults with real processes and real signals: nothing accepted is ever lost.

The five scenarios of the worker issue, on every engine (narrow with $CONVEYOR_WORKER_ENGINES),
with 1-2 s leases and 0.3 s heartbeats so crashed nodes are detected quickly.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from conveyor.backend import Backend
from conveyor.backend.protocol import EventsRequest
from conveyor.reaper import reap_expired
from conveyor.task import CallOptions
from conveyor.types import JobState
from tests.faults.helpers import (
    Cluster,
    WorkerNode,
    cluster,
    engine_sockets,
    freeze,
    running_on,
    wait_engine_forgot,
    wait_until,
)

__all__ = ["cluster"]  # the fixture

pytestmark = pytest.mark.faults


def test_sigkill_nodes_mid_job_loses_nothing(cluster: Cluster) -> None:
    """(1) 500 jobs on two nodes; SIGKILL a node mid-job, repeatedly: every job succeeds."""
    sleep = cluster.app.get_task("basic.sleep")
    # Attempts to spare: on a starved machine a 1 s lease can also lapse without a kill.
    options = CallOptions(max_attempts=10)
    requests = [cluster.app.build_request(sleep.name, {"seconds": 0.05}, options) for _ in range(500)]
    ids = [r.job.id for r in cluster.app.run_sync(lambda b: b.enqueue_many(requests))]
    nodes = [cluster.node(concurrency=2, lease=1.0), cluster.node(concurrency=2, lease=1.0)]

    killed_jobs: set[str] = set()
    kills = 0
    for round_ in range(3):
        victim = nodes[round_ % 2]

        def victim_busy_or_backlog_gone(v: WorkerNode = victim) -> bool:
            return bool(running_on(cluster, v)) or cluster.app.queue_stats()[0].pending == 0

        wait_until(victim_busy_or_backlog_gone, message="the victim to run jobs")
        freeze(victim, cluster.url)  # frozen: it can no longer send anything...
        sessions = engine_sockets(victim.pid)
        victim.kill()
        # ...and once the engine has dropped its sessions, nothing it sent before can still land
        wait_engine_forgot(cluster.url, sessions)
        caught = running_on(cluster, victim)
        if not caught:
            break  # the backlog ran out
        killed_jobs.update(caught)
        kills += 1
        replacement = cluster.node(concurrency=2, lease=1.0)
        nodes[round_ % 2] = replacement
        replacement.wait_for_log(r"executor\.started")

    jobs = cluster.wait_all(ids, timeout=180)
    assert kills >= 2, "the test must kill nodes while they run jobs"
    assert len(jobs) == 500
    assert [(j.id, j.state, j.attempts, j.error) for j in jobs if j.state is not JobState.SUCCEEDED] == []
    by_id = {j.id: j for j in jobs}
    assert [(j, by_id[j].attempts, by_id[j].error) for j in killed_jobs if by_id[j].attempts < 2] == []


def test_a_paused_node_is_fenced_off_after_another_takes_over(cluster: Cluster, tmp_path: Path) -> None:
    """(2) SIGSTOP a node past its lease; another node takes the job; the stale completion is refused.

    The first node holds a long lease with a heartbeat far in the future, and the lease is
    ended by moving the engine clock past it (``clock_offset``, the engines' test hook) and
    reaping: so when the frozen node resumes, no heartbeat of its own can answer "lease lost"
    first and stop the job. The test waits until the first node's executor (not frozen) has
    finished the job, resumes the node, and asserts the engine's refusal of its completion
    (``job.refused``), not merely that the node stopped somehow.
    """
    done = tmp_path / "done"
    first = cluster.node(concurrency=1, lease=120.0, heartbeat=100.0, worker_id="node-first")
    first.wait_for_log(r"executor\.started")
    job = cluster.app.get_task("basic.whoami").enqueue(seconds=3.0, done=str(done))
    first.wait_for_log(rf"job\.start id={job.id}")
    freeze(first, cluster.url)
    try:
        assert cluster.app.run_sync(reap_as_if_later) == [job.id]
        second = cluster.node(concurrency=1, lease=1.0, worker_id="node-second")
        taken = cluster.wait_state(job.id, JobState.SUCCEEDED)
        assert taken.result["worker"] == second.id
        assert taken.attempts == 2

        def first_executor_finished() -> bool:
            return done.exists() and first.id in done.read_text().split()

        wait_until(first_executor_finished, message="the frozen node's executor to finish the job")
    finally:
        first.signal(signal.SIGCONT)
    first.wait_for_log(rf"job\.refused outcome=succeeded .*id={job.id}\b")
    final = cluster.get(job.id)
    assert final.state is JobState.SUCCEEDED
    assert final.result == taken.result
    assert final.worker_id == second.id
    assert f"job.finish outcome=succeeded id={job.id}" not in first.log()


async def reap_as_if_later(backend: Backend) -> list[str]:
    """Reap with the engine clock moved past every lease (as if the frozen node slept that long)."""
    backend.clock_offset = 3600.0
    try:
        return await reap_expired(backend)
    finally:
        backend.clock_offset = 0.0


def test_poison_job_dead_letters_while_healthy_jobs_succeed(cluster: Cluster) -> None:
    """(3) A task that kills its executor every run fails after max_attempts; 200 others succeed."""
    poison = cluster.app.get_task("basic.poison").enqueue(how="sigkill")
    add = cluster.app.get_task("basic.add")
    requests = [cluster.app.build_request(add.name, {"a": i, "b": 1}) for i in range(200)]
    healthy = [r.job.id for r in cluster.app.run_sync(lambda b: b.enqueue_many(requests))]
    cluster.node(concurrency=2)

    dead = cluster.wait_state(poison.id, JobState.FAILED)
    assert dead.attempts == 3 == dead.max_attempts
    assert dead.error is not None
    assert dead.error["type"] == "ExecutorDied"
    assert "SIGKILL" in dead.error["message"]
    jobs = cluster.wait_all(healthy)
    harmed = [(j.id, j.state, j.attempts) for j in jobs if j.state is not JobState.SUCCEEDED or j.attempts != 1]
    assert harmed == []
    assert [j.result for j in jobs] == [i + 1 for i in range(200)]


def test_sigterm_during_a_job_finishes_or_releases_it(cluster: Cluster, tmp_path: Path) -> None:
    """(4) SIGTERM to the whole process group mid-job: finished or released, never lost or charged."""
    release = tmp_path / "release"
    short = cluster.app.get_task("basic.sleep").enqueue(seconds=1.0)
    long = cluster.app.get_task("basic.wait_for_file").enqueue(path=str(release))
    node = cluster.node(concurrency=2, grace=2)
    node.wait_for_log(rf"job\.start id={short.id}")
    node.wait_for_log(rf"job\.start id={long.id}")
    os.killpg(node.pid, signal.SIGTERM)  # as systemd does: supervisor and executors alike
    assert node.wait() == 0

    finished = cluster.get(short.id)
    assert finished.state is JobState.SUCCEEDED and finished.attempts == 1
    released = cluster.get(long.id)
    assert released.state is JobState.QUEUED
    assert released.attempts == 0, "the shutdown must not cost the job an attempt"

    release.touch()
    cluster.node(concurrency=1)
    rerun = cluster.wait_state(long.id, JobState.SUCCEEDED)
    assert rerun.attempts == 1
    assert rerun.result == 1


def test_a_job_delayed_past_the_lease_is_never_claimed_early(cluster: Cluster) -> None:
    """(5) A job delayed longer than the lease runs only once its time has come."""
    delayed = cluster.app.get_task("basic.whoami").with_options(delay=3.0).enqueue(seconds=0)
    cluster.node(concurrency=2, lease=1.0)
    add = cluster.app.get_task("basic.add")
    busy = [add.enqueue(a=i, b=i).id for i in range(20)]  # keep the node claiming meanwhile
    done = cluster.wait_state(delayed.id, JobState.SUCCEEDED)
    cluster.wait_all(busy, JobState.SUCCEEDED)
    assert done.attempts == 1
    assert done.started_at is not None and done.started_at >= delayed.run_at
    history = cluster.app.run_sync(lambda b: b.events(EventsRequest(delayed.id)))
    claims = [e for e in history if e.state is JobState.RUNNING]
    assert len(claims) == 1 and claims[0].at >= delayed.run_at
