"""SIGTERM drains a node: no new claims, running jobs finish within --grace, the rest go back."""

from __future__ import annotations

import signal
from pathlib import Path

from conveyor.types import JobState
from tests.faults.helpers import Cluster, pid_alive, wait_until


def test_sigterm_lets_running_jobs_finish_and_hands_back_the_rest(cluster: Cluster, tmp_path: Path) -> None:
    short = cluster.app.get_task("basic.sleep").enqueue(seconds=1.5)
    node = cluster.node(concurrency=1, grace=30)
    node.wait_for_log(rf"job\.start id={short.id}")
    waiting = [cluster.app.get_task("basic.add").enqueue(a=i, b=0).id for i in range(3)]
    node.signal(signal.SIGTERM)
    assert node.wait() == 0
    done = cluster.get(short.id)
    assert done.state is JobState.SUCCEEDED and done.attempts == 1
    for job_id in waiting:  # claimed-but-not-started ones were released, the others never claimed
        job = cluster.get(job_id)
        assert job.state is JobState.QUEUED
        assert job.attempts == 0
    assert "worker.draining" in node.log()


def test_grace_expiry_kills_and_releases_without_charging_an_attempt(cluster: Cluster, tmp_path: Path) -> None:
    release = tmp_path / "release"
    log = tmp_path / "starts.log"
    stuck = cluster.app.get_task("basic.wait_for_file").enqueue(path=str(release), log=str(log))
    stuck_async = cluster.app.get_task("basic.async_sleep").enqueue(seconds=300)
    node = cluster.node(concurrency=1, grace=0.5)
    node.wait_for_log(rf"job\.start id={stuck.id}")
    node.wait_for_log(rf"job\.start id={stuck_async.id}")
    node.signal(signal.SIGTERM)
    assert node.wait() == 0
    for job_id in (stuck.id, stuck_async.id):
        job = cluster.get(job_id)
        assert job.state is JobState.QUEUED
        assert job.attempts == 0
        node.wait_for_log(rf"job\.released id={job_id}")
    pid = int(log.read_text().split()[2])
    assert not pid_alive(pid), "the killed executor must not outlive its node"

    release.touch()
    cluster.node(concurrency=1)
    assert cluster.wait_state(stuck.id, JobState.SUCCEEDED).attempts == 1


def test_a_second_signal_skips_the_grace_period(cluster: Cluster, tmp_path: Path) -> None:
    job = cluster.app.get_task("basic.wait_for_file").enqueue(path=str(tmp_path / "never"))
    node = cluster.node(concurrency=1, grace=600)
    node.wait_for_log(rf"job\.start id={job.id}")
    node.signal(signal.SIGTERM)
    node.wait_for_log("worker.draining")
    node.signal(signal.SIGINT)
    assert node.wait() == 0
    released = cluster.get(job.id)
    assert released.state is JobState.QUEUED and released.attempts == 0


def test_burst_mode_exits_when_the_queue_is_empty(cluster: Cluster) -> None:
    ids = [cluster.app.get_task("basic.add").enqueue(a=i, b=i).id for i in range(10)]
    node = cluster.node(concurrency=2, extra=("--burst",))
    assert node.wait() == 0
    assert all(cluster.get(j).state is JobState.SUCCEEDED for j in ids)


def test_executors_that_cannot_start_hand_jobs_back(cluster: Cluster) -> None:
    job = cluster.app.get_task("basic.add").enqueue(a=1, b=1)
    node = cluster.node(app="tests.apps.broken_child:app", concurrency=1)
    wait_until(lambda: node.log().count("executor.boot_failed") >= 3, message="three failed executor boots")

    def handed_back() -> bool:
        held = cluster.get(job.id)
        return held.state is JobState.QUEUED and held.attempts == 0

    wait_until(handed_back, message="the job to be back in the queue, uncharged")
    node.signal(signal.SIGTERM)
    assert node.wait() == 0
    assert cluster.get(job.id).state is JobState.QUEUED
