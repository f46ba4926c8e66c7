"""The ledger every chaos scenario is checked with, and worker nodes that run on a lab host.

A scenario submits jobs whose task appends one line per run to a runs file
(``job_id attempt pid``), injects its fault, and hands the ledger the accepted ids with the end
state each must reach. ``Ledger.settle`` then asserts the contract: every accepted job reached
its expected end (none lost, none stuck running or pending), and every job that ran more than
once has one ``LeaseExpired`` in its history per extra run (a duplicate effect the at-least-once
contract allows, counted in ``duplicates``); any other second run is a failure.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conveyor.backend.protocol import EventsRequest
from conveyor.types import Job, JobState
from tests.chaos.lab import Host
from tests.faults.helpers import Cluster, WorkerNode


class HostNode(WorkerNode):
    """A ``conveyor worker`` process started inside a lab host's network namespace.

    ``ip netns exec`` execs the worker in place, so ``pid`` is the worker's own pid and every
    signal helper of WorkerNode works unchanged. ``preload`` is an LD_PRELOAD value (libfaketime).
    """

    def __init__(self, host: Host, url: str, log_dir: Path, **kwargs: Any) -> None:
        super().__init__(url, log_dir, **kwargs)
        self.host = host
        self.args = host.run_prefix() + self.args


def host_node(cluster: Cluster, host: Host, url: str, **kwargs: Any) -> HostNode:
    """Start a worker on ``host`` using ``url`` (the lab address); the cluster kills it after."""
    env = {"CONVEYOR_RESULTS": str(cluster.tmp_path / "results"), **kwargs.pop("env", {})}
    node = HostNode(host, url, cluster.tmp_path / "logs", env=env, **kwargs)
    node.start()
    cluster.nodes.append(node)
    return node


def submit(cluster: Cluster, task: str, n: int, **args: object) -> list[str]:
    """Enqueue ``n`` jobs in one batch; the ids of the accepted jobs."""
    reqs = [cluster.app.build_request(task, dict(args)) for _ in range(n)]
    return [r.job.id for r in cluster.app.run_sync(lambda b: b.enqueue_many(reqs))]


def lease_expiries(cluster: Cluster, job_id: str) -> int:
    history = cluster.app.run_sync(lambda b: b.events(EventsRequest(job_id)))
    return sum(1 for e in history if (e.data.get("error") or {}).get("type") == "LeaseExpired")


@dataclass
class Ledger:
    cluster: Cluster
    runs_file: Path
    expected: dict[str, JobState] = field(default_factory=dict)

    def accept(self, ids: list[str], end: JobState = JobState.SUCCEEDED) -> list[str]:
        for job_id in ids:
            self.expected[job_id] = end
        return ids

    def runs(self) -> Counter[str]:
        if not self.runs_file.exists():
            return Counter()
        return Counter(line.split()[0] for line in self.runs_file.read_text().splitlines() if line.strip())

    def settle(self, timeout: float = 180.0) -> dict[str, int]:
        """Wait for every accepted job to end and check the contract; answer the counts."""
        jobs: list[Job] = self.cluster.wait_all(list(self.expected), timeout=timeout)
        wrong = [(j.id, j.state.value, j.error) for j in jobs if j.state is not self.expected[j.id]]
        assert not wrong, f"{len(wrong)} jobs did not reach their expected end: {wrong[:5]}"
        stats = Counter[str]()
        for q in self.cluster.app.queue_stats():
            stats.update(q.counts)
        assert stats["running"] == stats["queued"] == stats["scheduled"] == 0, dict(stats)
        runs = self.runs()
        missing = [j for j, end in self.expected.items() if end is JobState.SUCCEEDED and runs[j] == 0]
        assert not missing, f"succeeded without running: {missing[:5]}"
        duplicates = 0
        for job_id, n in runs.items():
            if n > 1 and job_id in self.expected:
                allowed = lease_expiries(self.cluster, job_id)
                assert n - 1 <= allowed, f"job {job_id} ran {n} times with {allowed} lease expiries"
                duplicates += n - 1
        return {"jobs": len(jobs), "runs": sum(runs[j] for j in self.expected), "duplicates": duplicates}
