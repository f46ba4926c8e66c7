"""The fleet seen from the engine: nodes register, show their jobs, leave cleanly or die visibly,
and serve their own metrics (real worker processes on every engine)."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import urllib.request

from conveyor.fleet import WorkerStatus
from tests.faults.helpers import Cluster, wait_until


def _nodes(cluster: Cluster) -> dict[str, WorkerStatus]:
    return {w.worker_id: w for w in cluster.app.workers()}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_nodes_register_show_their_jobs_and_leave_on_a_clean_stop(cluster: Cluster) -> None:
    gate = cluster.tmp_path / "gate"
    first = cluster.node(queues="default,reports", extra=("--registry-interval", "0.2"))
    second = cluster.node(extra=("--registry-interval", "0.2"))
    wait_until(lambda: {first.id, second.id} <= set(_nodes(cluster)), message="both nodes to register")
    job = cluster.app.enqueue("basic.wait_for_file", {"path": str(gate)})
    cluster.wait_state(job.id, "running")
    holder = cluster.get(job.id).worker_id

    def shows_job() -> WorkerStatus | None:
        node = _nodes(cluster).get(holder or "")
        return node if node is not None and job.id in node.info.get("jobs", []) else None

    node = wait_until(shows_job, message="the holder's beat to list its job")
    assert node.alive and node.info["in_flight"] == 1 and node.info["state"] == "running"
    assert node.info["pid"] in (first.pid, second.pid) and node.info["host"] == socket.gethostname()
    assert _nodes(cluster)[first.id].info["queues"] == ["default", "reports"]

    gate.write_text("go")
    cluster.wait_state(job.id, "succeeded")
    first.signal(signal.SIGTERM)
    assert first.wait() == 0
    assert first.id not in _nodes(cluster), "a node that stops cleanly removes itself"
    assert _nodes(cluster)[second.id].alive


def test_a_killed_node_is_shown_dead_after_missing_its_beats(cluster: Cluster) -> None:
    node = cluster.node(extra=("--registry-interval", "0.2"))
    survivor = cluster.node(extra=("--registry-interval", "0.2"))
    wait_until(lambda: {node.id, survivor.id} <= set(_nodes(cluster)), message="both nodes to register")
    node.kill()
    dead = wait_until(
        lambda: (w := _nodes(cluster).get(node.id)) is not None and not w.alive and w,
        message="the killed node to be shown dead",
    )
    assert dead.silent_for > 3 * 0.2
    # the survivor keeps beating (a single late beat on a loaded machine is not death: poll)
    wait_until(lambda: _nodes(cluster)[survivor.id].alive, message="the live node to be shown alive")

    out = subprocess.run(
        [sys.executable, "-m", "conveyor", "workers", "--json", "--url", cluster.url],
        capture_output=True,
        text=True,
        timeout=60,
        env=survivor.env,
    )
    assert out.returncode == 0, out.stderr
    listed = {w["worker_id"]: w for w in json.loads(out.stdout)}
    assert listed[node.id]["alive"] is False and listed[survivor.id]["alive"] is True


def test_a_node_serves_its_own_metrics_with_the_queue_wait(cluster: Cluster) -> None:
    port = _free_port()
    node = cluster.node(extra=("--metrics-port", str(port), "--metrics-host", "127.0.0.1"))
    node.wait_for_log(r"worker\.metrics")
    job = cluster.app.enqueue("basic.add", {"a": 1, "b": 2})
    cluster.wait_state(job.id, "succeeded")

    def scraped() -> str | None:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
            text = response.read().decode()
        done = 'conveyor_jobs_finished_total{outcome="succeeded",task="basic.add"} 1.0' in text
        return text if done else None

    text = wait_until(scraped, message="the node's /metrics to count the finished job")
    assert 'conveyor_job_queue_wait_seconds_count{queue="default",task="basic.add"} 1.0' in text
    assert "conveyor_job_run_seconds_count" in text
