"""A real worker node runs jobs: results, time limits, dead executors, retries, redrive.

Each test starts ``conveyor worker`` as a subprocess on a fresh SQLite file and observes the
jobs through the engine, as a user would.
"""

from __future__ import annotations

from pathlib import Path

from conveyor.backend.protocol import EventsRequest
from conveyor.types import JobEvent, JobState
from tests.faults.helpers import Cluster, pid_alive, wait_until


def events(cluster: Cluster, job_id: str) -> list[JobEvent]:
    return cluster.app.run_sync(lambda b: b.events(EventsRequest(job_id)))


def test_jobs_run_and_store_their_results(cluster: Cluster) -> None:
    add = cluster.app.get_task("basic.add")
    ids = [add.enqueue(a=i, b=10).id for i in range(20)]
    cluster.node(concurrency=2)
    jobs = cluster.wait_all(ids)
    assert [j.state for j in jobs] == [JobState.SUCCEEDED] * 20
    assert [j.result for j in jobs] == [i + 10 for i in range(20)]
    assert all(j.attempts == 1 for j in jobs)


def test_time_limit_kills_the_executor_and_records_the_cause(cluster: Cluster, tmp_path: Path) -> None:
    log = tmp_path / "starts.log"
    task = cluster.app.get_task("basic.wait_for_file")
    job = task.with_options(timeout=1, max_attempts=1).enqueue(path=str(tmp_path / "never"), log=str(log))
    node = cluster.node(concurrency=1)
    done = cluster.wait_state(job.id, JobState.FAILED)
    assert done.error is not None
    assert done.error["type"] == "TimeLimitExceeded"
    assert done.error["message"] == "timed out after 1 s"
    pid = int(log.read_text().split()[2])
    wait_until(lambda: not pid_alive(pid), message="the timed-out executor to be gone")
    # the node replaced the executor and keeps working
    after = cluster.app.get_task("basic.add").enqueue(a=1, b=2)
    assert cluster.wait_state(after.id, JobState.SUCCEEDED).result == 3
    assert node.running


def test_dead_executors_fail_the_attempt_at_once_then_the_job_is_retried(cluster: Cluster) -> None:
    crash = cluster.app.get_task("basic.crash")
    causes = {"exit": "executor process exited with code 3", "sigkill": "killed by SIGKILL", "segfault": "SIGSEGV"}
    ids = {how: crash.enqueue(how=how, until_attempt=2).id for how in causes}
    # A lease far longer than the test: only the immediate failure path can retry these in time.
    cluster.node(concurrency=2, lease=60, heartbeat=5)
    for how, job_id in ids.items():
        job = cluster.wait_state(job_id, JobState.SUCCEEDED)
        assert job.attempts == 2
        assert job.result == 2
        retried = [e for e in events(cluster, job_id) if e.state is JobState.SCHEDULED]
        assert len(retried) == 1
        error = retried[0].data["error"]
        assert error["type"] == "ExecutorDied"
        assert causes[how] in error["message"]


def test_retries_back_off_then_dead_letter_then_redrive_succeeds(cluster: Cluster, tmp_path: Path) -> None:
    needed = tmp_path / "input.txt"
    job = cluster.app.get_task("basic.needs_file").enqueue(path=str(needed))
    flaky = cluster.app.get_task("basic.flaky").enqueue(fail_times=2)
    fatal = cluster.app.get_task("basic.fatal").enqueue(message="bad input, do not retry")
    unserializable = cluster.app.get_task("basic.unserializable").enqueue()
    cluster.node(concurrency=2)

    failed = cluster.wait_state(job.id, JobState.FAILED)
    assert failed.attempts == 3
    assert failed.error is not None and failed.error["type"] == "FileNotFoundError"
    # backoff: every retry started no earlier than its delay (0.2 s, then 0.4 s) after the failure
    history = events(cluster, job.id)
    failures = [e.at for e in history if e.state is JobState.SCHEDULED]
    starts = [e.at for e in history if e.state is JobState.RUNNING]
    assert len(failures) == 2 and len(starts) == 3
    assert starts[1] >= failures[0] + 0.2
    assert starts[2] >= failures[1] + 0.4

    assert cluster.wait_state(flaky.id, JobState.SUCCEEDED).attempts == 3

    dead = cluster.wait_state(fatal.id, JobState.FAILED)
    assert dead.attempts == 1, "DoNotRetry must not use up the remaining attempts"
    assert dead.error is not None and dead.error["type"] == "DoNotRetry"

    bad_result = cluster.wait_state(unserializable.id, JobState.FAILED)
    assert bad_result.attempts == 1
    assert bad_result.error is not None and bad_result.error["type"] == "ResultNotSerializable"

    needed.write_text("now it is there")
    assert cluster.app.redrive([job.id]) == 1
    redriven = cluster.wait_state(job.id, JobState.SUCCEEDED)
    assert redriven.result == "now it is there"
    assert redriven.attempts == 1


def test_async_tasks_run_concurrently_in_the_supervisor(cluster: Cluster) -> None:
    task = cluster.app.get_task("basic.async_sleep")
    ids = [task.enqueue(seconds=1.0).id for _ in range(3)]
    node = cluster.node(concurrency=1)
    jobs = cluster.wait_all(ids, JobState.SUCCEEDED)
    spans = [(j.result["start"], j.result["end"]) for j in jobs]
    assert all(j.result["pid"] == node.pid for j in jobs), "async tasks run in the supervisor's loop"
    # with one executor, sync jobs would run one after another; these overlap
    assert max(start for start, _ in spans) < min(end for _, end in spans)


def test_context_progress_artifacts_and_once(cluster: Cluster, tmp_path: Path) -> None:
    effects = tmp_path / "effects.log"
    artifact_job = cluster.app.get_task("basic.progress_artifact").enqueue(text="hello artifact")
    once_job = cluster.app.get_task("basic.once_effect").enqueue(path=str(effects))
    async_job = cluster.app.get_task("basic.async_progress").enqueue()
    cluster.node(concurrency=2)

    done = cluster.wait_state(artifact_job.id, JobState.SUCCEEDED)
    assert done.result == {"size": len(b"hello artifact")}
    assert [a.name for a in done.artifacts] == ["out.txt"]
    stored = b"".join(cluster.app.result_store.open(done.artifacts[0]))
    assert stored == b"hello artifact"
    progress = [e.data for e in events(cluster, artifact_job.id) if e.type == "progress"]
    assert progress == [{"fraction": 0.5, "message": "half way"}]

    retried = cluster.wait_state(once_job.id, JobState.SUCCEEDED)
    assert retried.attempts == 2
    assert effects.read_text().splitlines() == [f"charged {once_job.id} on attempt 1"]

    assert cluster.wait_state(async_job.id, JobState.SUCCEEDED).result == 1
    assert [e.data["fraction"] for e in events(cluster, async_job.id) if e.type == "progress"] == [0.25]
