"""PostgreSQL under faults, with real processes: a private server crashed with
``pg_ctl stop -m immediate`` and started again under load, worker nodes SIGKILLed under load,
and two nodes draining one queue. After recovery every accepted job ends as its task dictates
(succeeded, or failed for a task that refuses to run), none is lost, none stays running.

Nodes are ``python -m conveyor worker`` subprocesses (tests/faults/helpers.py) on a fresh
database of the private server (tests/postgres/server.py), with 2 s leases.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor.backend.protocol import EventsRequest
from conveyor.errors import BackendUnavailable
from conveyor.types import Job, JobState
from tests.faults.helpers import Cluster, WorkerNode, wait_until
from tests.postgres.server import PrivateServer, pg_private_url, pg_server

__all__ = ["pg_private_url", "pg_server"]  # fixtures

pytestmark = pytest.mark.faults
LEASE = 2.0
NODE = {"concurrency": 2, "lease": LEASE, "heartbeat": 0.5, "extra": ("--reap-interval", "0.5")}


@pytest.fixture
def pg_cluster(pg_private_url: str, tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(pg_private_url, tmp_path)
    try:
        yield c
    finally:
        c.close()


def submit(cluster: Cluster, task: str, n: int, **args: object) -> list[str]:
    reqs = [cluster.app.build_request(task, dict(args)) for _ in range(n)]
    return [r.job.id for r in cluster.app.run_sync(lambda b: b.enqueue_many(reqs))]


def counts(cluster: Cluster) -> Counter[str]:
    stats = cluster.app.queue_stats()
    total: Counter[str] = Counter()
    for q in stats:
        total.update(q.counts)
    return total


def running_on(cluster: Cluster, node: WorkerNode) -> list[str]:
    page = cluster.app.list_jobs(states=[JobState.RUNNING], limit=1000)
    return [j.id for j in page.jobs if j.worker_id == node.id]


def assert_settled(jobs: list[Job], expected: dict[str, JobState]) -> None:
    """Every job terminal, in the state its task dictates; nothing running or pending."""
    wrong = [(j.id, j.task, j.state, j.error) for j in jobs if j.state is not expected[j.task]]
    assert not wrong, wrong[:5]


def test_database_crash_under_load_loses_nothing(pg_server: PrivateServer, pg_cluster: Cluster) -> None:
    nodes = [pg_cluster.node(**NODE), pg_cluster.node(**NODE)]
    for node in nodes:  # up and connected before the first crash (startup during an outage is not this test)
        node.wait_for_log(r"executor\.started")
    accepted = submit(pg_cluster, "basic.sleep", 150, seconds=0.05)
    accepted += submit(pg_cluster, "basic.flaky", 20, fail_times=1)
    accepted += submit(pg_cluster, "basic.fatal", 10, message="refuses to run")
    expected = {"basic.sleep": JobState.SUCCEEDED, "basic.flaky": JobState.SUCCEEDED, "basic.fatal": JobState.FAILED}

    refused = 0
    for _crash in range(2):
        wait_until(lambda: counts(pg_cluster)["running"] > 0, message="nodes running jobs")
        pg_server.stop("immediate")
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:  # the API would answer 503: nothing accepted, nothing lost
            with pytest.raises(BackendUnavailable):
                pg_cluster.app.enqueue("basic.add", {"a": 1, "b": 2})
            refused += 1
        pg_server.start()
        accepted += submit(pg_cluster, "basic.sleep", 40, seconds=0.05)

    jobs = pg_cluster.wait_all(accepted, timeout=180)
    assert refused > 0
    assert_settled(jobs, expected)
    assert counts(pg_cluster)["running"] == 0
    dead = [f"{n.id}:\n{n.log()[-3000:]}" for n in nodes if not n.running]
    assert not dead, "worker nodes must survive a database restart by themselves:\n" + "\n".join(dead)
    assert len(jobs) == len(set(accepted)) == 150 + 20 + 10 + 80


def test_sigkill_worker_nodes_under_load_loses_nothing(pg_cluster: Cluster) -> None:
    ids = submit(pg_cluster, "basic.sleep", 300, seconds=0.05)
    nodes = [pg_cluster.node(**NODE), pg_cluster.node(**NODE)]
    caught: set[str] = set()
    for round_ in range(2):
        victim = nodes[round_ % 2]
        running = wait_until(lambda v=victim: running_on(pg_cluster, v), message=f"{victim.id} running jobs")
        victim.kill()
        caught.update(running)
        nodes[round_ % 2] = pg_cluster.node(**NODE)

    jobs = pg_cluster.wait_all(ids, timeout=180)
    assert {j.state for j in jobs} == {JobState.SUCCEEDED}
    by_id = {j.id: j for j in jobs}
    rerun = [by_id[j] for j in caught if by_id[j].attempts >= 2]
    # Jobs caught mid-run on a killed node ran again (unless the node finished them before dying).
    assert rerun, "at least one job must have been interrupted by a SIGKILL"
    for job in rerun:
        history = pg_cluster.app.run_sync(lambda b, j=job: b.events(EventsRequest(j.id)))
        assert any((e.data.get("error") or {}).get("type") == "LeaseExpired" for e in history), history
    assert counts(pg_cluster)["running"] == 0


def test_two_nodes_drain_one_queue_without_running_a_job_twice(pg_cluster: Cluster, tmp_path: Path) -> None:
    log = tmp_path / "runs.log"
    ids = submit(pg_cluster, "basic.sleep_coop", 300, seconds=0.01, log=str(log))
    nodes = [pg_cluster.node(**NODE), pg_cluster.node(**NODE)]
    jobs = pg_cluster.wait_all(ids, timeout=180)
    assert {j.state for j in jobs} == {JobState.SUCCEEDED}

    runs = Counter(line.split()[0] for line in log.read_text().splitlines())
    assert set(runs) == set(ids)
    for job_id, n in runs.items():
        if n == 1:
            continue
        # A second run is legitimate only after the first node lost the lease.
        history = pg_cluster.app.run_sync(lambda b, j=job_id: b.events(EventsRequest(j)))
        expiries = [e for e in history if (e.data.get("error") or {}).get("type") == "LeaseExpired"]
        assert len(expiries) >= n - 1, (job_id, n, history)
    workers = {j.worker_id for j in jobs}
    assert workers == {n.id for n in nodes}, "both nodes must have taken part"


def test_node_started_while_database_is_down_comes_up_by_itself(pg_server: PrivateServer, pg_cluster: Cluster) -> None:
    """A worker node that boots before its database waits for it instead of exiting."""
    pg_server.stop("fast")
    node = pg_cluster.node(**NODE)
    node.wait_for_log(r"worker\.engine_unavailable")
    assert node.running, "the node exited instead of waiting for the database"
    pg_server.start()
    job = pg_cluster.app.enqueue("basic.add", {"a": 2, "b": 3})
    done = pg_cluster.wait_state(job.id, JobState.SUCCEEDED)
    assert done.result == 5
    assert node.running
