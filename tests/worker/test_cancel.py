"""Cancel a running job: its execution stops within about one heartbeat and is never completed."""

from __future__ import annotations

from pathlib import Path

from conveyor.types import JobState
from tests.faults.helpers import Cluster, pid_alive, wait_until


def started_pid(log: Path, job_id: str) -> int:
    """The executor pid the task logged when it started (waits for the line)."""

    def find() -> int | None:
        if not log.exists():
            return None
        for line in log.read_text().splitlines():
            job, _attempt, pid = line.split()
            if job == job_id:
                return int(pid)
        return None

    return wait_until(find, message=f"job {job_id} to start")


def test_cancel_kills_an_uncooperative_sync_job(cluster: Cluster, tmp_path: Path) -> None:
    log = tmp_path / "starts.log"
    release = tmp_path / "release"
    job = cluster.app.get_task("basic.wait_for_file").enqueue(path=str(release), log=str(log))
    node = cluster.node(concurrency=1)
    pid = started_pid(log, job.id)
    assert pid in node.executor_pids()

    cluster.app.cancel(job.id)
    wait_until(lambda: not pid_alive(pid), message="the canceled job's executor to be killed")
    node.wait_for_log(rf"job\.stopped .*reason=canceled .*id={job.id}")
    release.touch()  # had the task survived, it would now return and try to complete
    after = cluster.app.get_task("basic.add").enqueue(a=2, b=2)
    assert cluster.wait_state(after.id, JobState.SUCCEEDED).result == 4
    final = cluster.get(job.id)
    assert final.state is JobState.CANCELED
    assert final.result is None
    assert f"job.finish outcome=succeeded id={job.id}" not in node.log()


def test_a_cooperative_job_stops_itself_and_keeps_its_executor(cluster: Cluster, tmp_path: Path) -> None:
    log = tmp_path / "starts.log"
    job = cluster.app.get_task("basic.sleep_coop").enqueue(seconds=120, log=str(log))
    # heartbeat 2 s gives the task 1 s (half an interval) to notice before a kill
    node = cluster.node(concurrency=1, lease=10, heartbeat=2)
    pid = started_pid(log, job.id)
    cluster.app.cancel(job.id)
    node.wait_for_log(rf"job\.stopped .*reason=canceled .*id={job.id}")
    assert cluster.get(job.id).state is JobState.CANCELED
    after = cluster.app.get_task("basic.whoami").enqueue(seconds=0)
    assert cluster.wait_state(after.id, JobState.SUCCEEDED).result["pid"] == pid


def test_cancel_an_async_job(cluster: Cluster) -> None:
    job = cluster.app.get_task("basic.async_sleep").enqueue(seconds=300)
    node = cluster.node(concurrency=1)
    node.wait_for_log(rf"job\.start id={job.id}")
    cluster.app.cancel(job.id)
    node.wait_for_log(rf"job\.stopped .*reason=canceled .*id={job.id}")
    assert cluster.get(job.id).state is JobState.CANCELED
    after = cluster.app.get_task("basic.async_sleep").enqueue(seconds=0)
    cluster.wait_state(after.id, JobState.SUCCEEDED)
