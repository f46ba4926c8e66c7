"""Slow and lossy links: 100 ms ± 50 ms each way and 5 % packet loss between workers and engine.

Two worker hosts drain a queue through relay links that delay every packet by 100 ms ± 50 ms
(uniform, so packets reorder) and drop 5 % of them, both directions (what ``tc netem delay
100ms 50ms loss 5%`` does; see tests/chaos/relay.py for why a relay). Checked: nothing is lost
(the ledger), and no lease expires while heartbeats get through: no job has a LeaseExpired in
its history and none ran twice.

The margin: a lease of 10 s renewed every 1 s. One heartbeat round trip costs ~200-300 ms
here, and a lost segment costs TCP one retransmission timeout (200 ms at first, doubling), so
a heartbeat would have to fail ~5 times in a row (p ≈ 0.05⁵ per segment) before a lease came
near its end. The test samples the lowest remaining lease it sees on running jobs (engine's
lease_expires_at minus now; the engine runs on this machine, so one clock) and prints it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor.types import JobState
from tests.chaos.conftest import LONG
from tests.chaos.lab import Lab
from tests.chaos.ledger import Ledger, host_node, lease_expiries, submit
from tests.faults.helpers import Cluster, wait_until

pytestmark = pytest.mark.chaos
LEASE = 10.0
HEARTBEAT = 1.0
NODE = {"concurrency": 2, "lease": LEASE, "heartbeat": HEARTBEAT}


@pytest.fixture
def cluster(lab_engine: tuple[str, str], tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(lab_engine[0], tmp_path)
    try:
        yield c
    finally:
        c.close()


def test_slow_lossy_links_lose_nothing_and_expire_no_lease(
    lab: Lab, hosts: list, cluster: Cluster, lab_engine: tuple[str, str], tmp_path: Path
) -> None:
    links = [lab.host(relay=True), lab.host(relay=True)]
    hosts += links
    for link in links:
        link.netem(100, 50, 5)
    runs = tmp_path / "runs.log"
    ledger = Ledger(cluster, runs)
    nodes = [host_node(cluster, link, lab_engine[1], **NODE) for link in links]
    for node in nodes:
        node.wait_for_log(r"executor\.started", timeout=120)
    n = 80 if LONG else 16
    started = time.monotonic()
    ids = ledger.accept(submit(cluster, "basic.sleep_coop", n, seconds=2.5, log=str(runs)))
    low = LEASE

    def drained() -> bool:
        nonlocal low
        page = cluster.app.list_jobs(states=[JobState.RUNNING], limit=1000)
        now = time.time()
        for job in page.jobs:
            if job.lease_expires_at is not None and job.started_at is not None and now - job.started_at > HEARTBEAT:
                low = min(low, job.lease_expires_at - now)
        return all(cluster.get(i).terminal for i in ids)

    wait_until(drained, timeout=300, interval=0.2, message="the queue to drain over slow links")
    elapsed = time.monotonic() - started
    counts = ledger.settle()
    assert counts["duplicates"] == 0, counts
    assert not [i for i in ids if lease_expiries(cluster, i)], "a lease expired while heartbeats got through"
    assert all(node.running for node in nodes)
    print(f"slow links: {n} jobs of 2.5 s drained in {elapsed:.1f} s; lowest lease left {low:.2f} of {LEASE} s")
