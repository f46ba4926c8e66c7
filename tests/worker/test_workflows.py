"""Workflows on real worker nodes: steps read their dependencies, fan-out/fan-in, crashes.

Each test starts ``conveyor worker`` subprocesses on a fresh store of every engine and drives
them through the public Python API (``task.s``, ``app.chain``, ``app.group``, ``app.fan_out``).
"""

from __future__ import annotations

import signal
from pathlib import Path

from conveyor.types import DependencyPolicy, JobState
from tests.faults.helpers import Cluster, running_on, wait_until


def test_steps_read_their_dependencies_in_sync_and_async_tasks(cluster: Cluster) -> None:
    app = cluster.app
    value, fatal = app.get_task("basic.wf_value"), app.get_task("basic.fatal")
    ok = value.s(value={"rows": 3}).set(step="fetch")
    bad = fatal.s(message="no printer").set(step="print", max_attempts=1)
    collectors = [
        app.get_task(name).s().set(step=f"collect-{name}") for name in ("basic.wf_collect", "basic.wf_collect_async")
    ]
    wf = app.enqueue_many([c.after(ok, bad).set(on_dependency_failure=DependencyPolicy.CONTINUE) for c in collectors])
    assert len({job.workflow_id for job in wf}) == 1 and wf.id == wf[0].workflow_id
    assert [job.step for job in wf] == ["fetch", "print", *(c.step for c in collectors)]
    cluster.node(concurrency=2)
    for c in collectors:
        job = cluster.wait_state(wf.step(c.step or "").id, JobState.SUCCEEDED)
        seen = job.result
        assert seen["results"] == {"fetch": {"rows": 3}, ok.job_id: {"rows": 3}}  # succeeded ones only
        deps = {d["step"]: d for d in seen["dependencies"]}
        assert deps["fetch"] == {
            "id": ok.job_id,
            "step": "fetch",
            "task": "basic.wf_value",
            "state": "succeeded",
            "result": {"rows": 3},
            "error": None,
        }
        assert deps["print"]["state"] == "failed" and deps["print"]["error"]["message"] == "no printer"


def test_a_chain_passes_results_and_a_failed_step_cancels_the_rest(cluster: Cluster) -> None:
    app = cluster.app
    value, collect, fatal = (app.get_task(f"basic.{n}") for n in ("wf_value", "wf_collect", "fatal"))
    good = app.chain(value.s(value=7).set(step="a"), collect.s().set(step="b"))
    broken = app.chain(fatal.s(message="x").set(max_attempts=1), collect.s(), collect.s())
    cluster.node(concurrency=2)
    assert cluster.wait_state(good.last.id, JobState.SUCCEEDED).result["results"]["a"] == 7
    cluster.wait_state(broken[0].id, JobState.FAILED)
    second, third = (cluster.wait_state(j.id, JobState.CANCELED) for j in broken.jobs[1:])
    assert second.error is not None and second.error["type"] == "DependencyFailed"
    assert second.error["message"] == f"dependency {broken[0].id} (fatal) failed"
    assert third.error is not None and third.error["dependency"] == second.id


def test_fan_out_runs_the_fan_in_exactly_once_after_every_chunk(cluster: Cluster, tmp_path: Path) -> None:
    app = cluster.app
    log = tmp_path / "fan_in.log"
    chunk, total = app.get_task("basic.wf_chunk"), app.get_task("basic.wf_sum")
    wf = app.fan_out(chunk, list(range(100)), chunk_size=7, then=total.s(log=str(log)).set(step="total"))
    assert len(wf) == 15 + 1 and [j.step for j in wf][:2] == ["wf_chunk[0]", "wf_chunk[1]"]
    cluster.node(concurrency=4)
    assert cluster.wait_state(wf.last.id, JobState.SUCCEEDED).result == sum(range(100))
    assert log.read_text().split() == [wf.last.id]
    steps = app.list_jobs(workflow=wf.id, limit=100).jobs
    assert len(steps) == 16 and all(j.progress == 1.0 for j in steps)


def test_spawn_chunks_from_inside_a_task_does_not_hold_its_slot(cluster: Cluster, tmp_path: Path) -> None:
    """Concurrency 1: the spawning job returns, then the chunks and the fan-in run on that slot."""
    log = tmp_path / "fan_in.log"
    job = cluster.app.get_task("basic.wf_spawn").enqueue(n=50, chunk_size=10, log=str(log))
    cluster.node(concurrency=1)
    workflow_id = cluster.wait_state(job.id, JobState.SUCCEEDED).result
    steps = cluster.app.list_jobs(workflow=workflow_id, limit=100).jobs
    total = next(j for j in steps if j.step == "total")
    assert cluster.wait_state(total.id, JobState.SUCCEEDED).result == sum(range(50))
    assert len(steps) == 6
    assert log.read_text().split() == [total.id]


def test_a_node_killed_while_running_a_parent_still_runs_the_fan_in_exactly_once(
    cluster: Cluster, tmp_path: Path
) -> None:
    app = cluster.app
    gate, log = tmp_path / "gate", tmp_path / "fan_in.log"
    slow = app.get_task("basic.wait_for_file").s(path=str(gate)).set(step="slow")
    fast = app.get_task("basic.wf_value").s(value=1).set(step="fast")
    wf = app.group(slow, fast, then=app.get_task("basic.wf_collect").s(log=str(log)).set(step="join"))
    doomed = cluster.node(concurrency=2, lease=2)
    cluster.wait_state(wf.step("fast").id, JobState.SUCCEEDED)
    wait_until(lambda: wf.step("slow").id in running_on(cluster, doomed), message="the slow parent to run")
    doomed.signal(signal.SIGKILL)
    doomed.wait()
    assert cluster.get(wf.last.id).state is JobState.WAITING
    gate.touch()
    cluster.node(concurrency=2, lease=2)  # reaps the dead node's lease, reruns the parent
    join = cluster.wait_state(wf.last.id, JobState.SUCCEEDED)
    assert cluster.get(wf.step("slow").id).attempts == 2
    assert set(join.result["results"]) >= {"slow", "fast"}
    assert log.read_text().split() == [wf.last.id]
