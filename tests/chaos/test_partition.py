"""Partition: one worker host is cut off from the engine for longer than its lease.

Two worker hosts (network namespaces) drain one queue. Host A is cut off (``tc netem loss
100%`` on both ends of its link) while it runs jobs. Checked: host B takes A's jobs over while
A is still cut off (the reaper on B sees their leases expire on the engine's clock); when the
link returns, A's late heartbeats and completions are refused (fencing: its log shows the jobs
stopped as ``lost`` or its results ``refused``); A goes back to work without a restart (same
process, new jobs finish on it); the ledger holds (every job succeeded, each second run
matches a lease expiry). PostgreSQL and Redis only: SQLite has no network to cut.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor.types import JobState
from tests.chaos.conftest import LONG
from tests.chaos.lab import Lab
from tests.chaos.ledger import Ledger, host_node, submit
from tests.faults.helpers import Cluster, running_on, wait_until

pytestmark = pytest.mark.chaos
LEASE = 2.0
NODE = {"concurrency": 2, "lease": LEASE, "heartbeat": 0.4, "extra": ("--reap-interval", "0.5")}
CUT = 3 * LEASE
"""The partition lasts at least this long after the takeover is seen (well past A's lease)."""


@pytest.fixture
def cluster(lab_engine: tuple[str, str], tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(lab_engine[0], tmp_path)
    try:
        yield c
    finally:
        c.close()


def test_partitioned_host_is_fenced_and_resumes_without_restart(
    lab: Lab, hosts: list, cluster: Cluster, lab_engine: tuple[str, str], tmp_path: Path
) -> None:
    lab_url = lab_engine[1]
    a, b = lab.host(relay=True), lab.host()
    hosts += [a, b]
    runs = tmp_path / "runs.log"
    ledger = Ledger(cluster, runs)
    node_a = host_node(cluster, a, lab_url, **NODE)
    node_b = host_node(cluster, b, lab_url, **NODE)
    for node in (node_a, node_b):
        node.wait_for_log(r"executor\.started")
    rounds = 3 if LONG else 1
    takeovers: list[float] = []
    reaped: list[float] = []
    for _ in range(rounds):
        ledger.accept(submit(cluster, "basic.sleep_coop", 40 if LONG else 12, seconds=1.5, log=str(runs)))
        caught = wait_until(lambda: running_on(cluster, node_a), message="host A running jobs")
        a.partition()
        cut_at = time.monotonic()
        try:
            # reaped: the engine no longer counts them as A's (lease expired on the engine's clock)
            wait_until(
                lambda c=caught: not set(c) & set(running_on(cluster, node_a)), timeout=60, message="A leases expired"
            )
            reaped.append(time.monotonic() - cut_at)

            # taken over by B while A is still cut off: running or finished on B, with a new attempt
            def taken(c: list[str] = caught) -> bool:
                jobs = [cluster.get(j) for j in c]
                return all(j.worker_id == node_b.id and j.attempts >= 2 for j in jobs)

            wait_until(taken, timeout=60, interval=0.1, message=f"host B to take over {caught}")
            takeovers.append(time.monotonic() - cut_at)
            time.sleep(CUT)  # the fault itself: keep A cut off (not a synchronisation)
        finally:
            a.heal()
        # fencing: A learns it lost those jobs (a heartbeat answers lost, or its result is refused)
        for job_id in caught:
            node_a.wait_for_log(rf"job\.(stopping|stopped|refused) .*id={re.escape(job_id)}", timeout=90)
        # A works again, same process: some job claimed after the heal finishes on A
        # (B runs 2 at a time, so 12 jobs of 1 s leave A work as soon as it can claim)
        after = ledger.accept(submit(cluster, "basic.sleep_coop", 12, seconds=1.0, log=str(runs)))
        try:
            wait_until(
                lambda ids=after: any(
                    (j := cluster.get(i)).worker_id == node_a.id and j.state is JobState.SUCCEEDED for i in ids
                ),
                timeout=90,
                message="host A to finish a job after the partition",
            )
        except pytest.fail.Exception:
            pytest.fail(f"host A did not work again after the partition; its log:\n{node_a.log()[-4000:]}")
    assert node_a.running and node_b.running, "no worker may exit or need a restart"
    counts = ledger.settle()
    assert counts["duplicates"] >= 1, "the jobs A was running must have run again on B"
    print(
        f"partition: A's jobs requeued after {', '.join(f'{t:.1f}' for t in reaped)} s, running on B after "
        f"{', '.join(f'{t:.1f}' for t in takeovers)} s (lease {LEASE} s); ledger {counts}"
    )
