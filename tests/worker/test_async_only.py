"""A node whose app has only async tasks runs them in its event loop and starts no executor
process (issue 10: memory), on every engine."""

from __future__ import annotations

from conveyor.backend.protocol import EnqueueRequest
from tests.faults.helpers import Cluster, child_pids, wait_until


def test_an_async_only_app_runs_without_any_executor_process(cluster: Cluster) -> None:
    node = cluster.node(app="tests.apps.async_only:app", concurrency=2, extra=("--registry-interval", "0.2"))
    node.wait_for_log(r"worker\.start")
    requests = [EnqueueRequest(task="async_only.double", args={"n": n}) for n in range(20)]
    jobs = cluster.app.run_sync(lambda backend: backend.enqueue_many(requests))
    done = cluster.wait_all([r.job.id for r in jobs], "succeeded")
    assert [j.result for j in done] == [n * 2 for n in range(20)]
    assert child_pids(node.pid) == [], "no executor (and no multiprocessing helper) was started"
    registered = wait_until(lambda: next((w for w in cluster.app.workers() if w.worker_id == node.id), None))
    assert registered.info["executors"] == 0
