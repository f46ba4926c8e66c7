"""Resources: a gpu job is never run by a node without a gpu, and a node with gpu=1 never runs
two gpu jobs at once (real nodes, every engine)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor.errors import ConfigError
from conveyor.resources import ResourceGate, parse_resources, resource_queue, served_queues, split_queue
from conveyor.types import Job, JobState
from tests.apps.resources_app import make_app
from tests.engines import ENGINES, engine_url
from tests.faults.helpers import WorkerNode, wait_until

APP = "tests.apps.resources_app:app"


@pytest.fixture(params=ENGINES, ids=list(ENGINES))
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with engine_url(request.param, tmp_path) as found:
        yield found


def _node(url: str, tmp: Path, name: str, *extra: str) -> WorkerNode:
    env = {"RESOURCE_TEST_LOG": str(tmp / "gpu.log"), "NODE_NAME": name}
    return WorkerNode(url, tmp / "logs", app=APP, concurrency=3, worker_id=name, extra=extra, env=env).start()


def _finished(app, ids: list[str]) -> list[Job]:  # type: ignore[no-untyped-def]
    def done() -> list[Job] | None:
        jobs = [app.get(i) for i in ids]
        return jobs if all(j.terminal for j in jobs) else None

    return wait_until(done, 120, message=f"{len(ids)} jobs to finish")


def test_gpu_jobs_run_only_on_the_gpu_node_one_at_a_time(url: str, tmp_path: Path) -> None:
    app = make_app(url)
    nodes = [_node(url, tmp_path, "plain"), _node(url, tmp_path, "gpu-node", "--resources", "gpu=1")]
    try:
        gpu = [app.enqueue("gpu.infer", {"n": n}).id for n in range(5)]
        cpu = [app.enqueue("cpu.work", {"n": n}).id for n in range(10)]
        assert {app.get(i).queue for i in gpu} == {"default@gpu"}  # type: ignore[union-attr]
        jobs = _finished(app, gpu + cpu)
        assert all(j.state is JobState.SUCCEEDED for j in jobs), [j.error for j in jobs]
        assert {j.result for j in jobs[:5]} == {"gpu-node"}, "a gpu job ran on a node without a gpu"
        lines = (tmp_path / "gpu.log").read_text().split()
        events = [w for w in lines if w in ("start", "end")]
        assert events == ["start", "end"] * 5, f"two gpu jobs overlapped on a gpu=1 node: {lines}"
    finally:
        for node in nodes:
            node.close()
        app.close()


def test_without_a_gpu_node_a_gpu_job_waits(url: str, tmp_path: Path) -> None:
    app = make_app(url)
    node = _node(url, tmp_path, "plain")
    try:
        gpu = app.enqueue("gpu.infer", {"n": 1})
        later = app.enqueue("cpu.work", {"n": 2})  # enqueued after it, on the same base queue
        [done] = _finished(app, [later.id])
        assert done.state is JobState.SUCCEEDED
        assert app.get(gpu.id).state is JobState.QUEUED  # type: ignore[union-attr]
        gpu_node = _node(url, tmp_path, "gpu-node", "--resources", "gpu=2")
        [ran] = _finished(app, [gpu.id])
        assert ran.state is JobState.SUCCEEDED and ran.result == "gpu-node"
        gpu_node.close()
    finally:
        node.close()
        app.close()


def test_resource_queue_names_round_trip() -> None:
    assert resource_queue("default", {}) == "default"
    assert resource_queue("default", {"gpu": 1}) == "default@gpu"
    assert resource_queue("render", {"ram": 8, "gpu": 2}) == "render@gpu=2+ram=8"
    assert split_queue("render@gpu=2+ram=8") == ("render", {"gpu": 2, "ram": 8})
    assert split_queue("team@example.com") == ("team@example.com", {})
    assert served_queues(["default"], {"gpu": 1}, ["default@gpu", "default@gpu=2", "other@gpu"]) == ("default@gpu",)


def test_gate_counts_what_jobs_hold() -> None:
    gate = ResourceGate({"gpu": 2}, ["q@gpu", "q@gpu=2"])
    assert gate.room("q@gpu") == 2 and gate.room("q@gpu=2") == 1
    job = Job(id="j1", task="t", args={}, queue="q@gpu", state=JobState.RUNNING)
    gate.take(job)
    assert gate.room("q@gpu") == 1 and gate.room("q@gpu=2") == 0
    gate.release(job)
    assert gate.room("q@gpu=2") == 1


@pytest.mark.parametrize("text", ["gpu=x", "GPU=1", "gpu=0", "gpu=1,gpu=2"])
def test_bad_resources_flag_is_a_config_error(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_resources(text)
