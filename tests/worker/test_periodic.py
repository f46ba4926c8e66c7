"""Periodic jobs across a fleet: three real worker nodes enqueue a schedule's ticks, one is
SIGKILLed mid-way and another starts late (a restart), and every tick still has exactly one job,
with no tick missing, on every engine."""

from __future__ import annotations

import itertools
import signal
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from conveyor.app import Conveyor
from conveyor.types import Job
from tests.apps.periodic import make_app
from tests.faults.helpers import WORKER_ENGINES, Cluster, engine_cluster, wait_until

APP = "tests.apps.periodic:app"


@pytest.fixture(params=WORKER_ENGINES, ids=list(WORKER_ENGINES))
def cluster(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Cluster]:
    with engine_cluster(request.param, tmp_path) as c:
        c.app.close()
        c.app = make_app(c.url)
        yield c


def tick_jobs(app: Conveyor) -> list[Job]:
    jobs: list[Job] = []
    cursor = None
    while True:
        page = app.list_jobs(task="periodic.tick", limit=500, cursor=cursor)
        jobs.extend(page.jobs)
        if page.next_cursor is None:
            return jobs
        cursor = page.next_cursor


def tick_time(job: Job) -> float:
    key = job.idempotency_key or ""
    assert key.startswith("schedule:every-second:"), key
    return datetime.strptime(key.split(":", 2)[2], "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()


def test_one_job_per_tick_across_three_nodes_a_kill_and_a_restart(cluster: Cluster) -> None:
    nodes = [cluster.node(app=APP, concurrency=1, lease=3, heartbeat=0.5) for _ in range(3)]
    wait_until(lambda: len(tick_jobs(cluster.app)) >= 8, timeout=90, interval=0.5, message="8 ticks")
    nodes[1].signal(signal.SIGKILL)  # a node dies mid-way: the others keep ticking
    seen_at_kill = len(tick_jobs(cluster.app))
    wait_until(lambda: len(tick_jobs(cluster.app)) >= seen_at_kill + 6, timeout=90, interval=0.5, message="6 more")
    late = cluster.node(app=APP, concurrency=1, lease=3, heartbeat=0.5)  # a restart joins the fleet
    late.wait_for_log(r"worker\.(start|ready)", timeout=90)
    at_restart = len(tick_jobs(cluster.app))
    wait_until(lambda: len(tick_jobs(cluster.app)) >= at_restart + 6, timeout=90, interval=0.5, message="6 more")
    for node in (nodes[0], nodes[2], late):
        node.signal(signal.SIGKILL)

    jobs = tick_jobs(cluster.app)
    per_tick = Counter(j.idempotency_key for j in jobs)
    assert len(jobs) >= 20
    doubles = {k: n for k, n in per_tick.items() if n != 1}
    assert not doubles, f"ticks with more than one job: {doubles}"
    ticks = sorted(tick_time(j) for j in jobs)
    gaps = [(a, b) for a, b in itertools.pairwise(ticks) if round(b - a) != 1]
    assert not gaps, f"ticks missing between {gaps}"
    assert all(t == int(t) for t in ticks), "every-second ticks fall on whole seconds"
    # every node enqueued ticks (none of them is a designated leader)
    logs = [n.log() for n in (nodes[0], nodes[2])]
    assert all("schedule.enqueued" in text for text in logs), "each surviving node enqueued some ticks"


def test_a_fleet_that_was_down_does_not_fire_a_burst_of_missed_ticks(cluster: Cluster) -> None:
    node = cluster.node(app=APP, concurrency=1, lease=3, heartbeat=0.5)
    wait_until(lambda: len(tick_jobs(cluster.app)) >= 3, timeout=90, interval=0.5, message="3 ticks")
    node.signal(signal.SIGKILL)
    node.wait()
    before = {j.idempotency_key for j in tick_jobs(cluster.app)}
    last = max(tick_time(j) for j in tick_jobs(cluster.app))
    # the fleet is down for a while: wait (with a deadline) until the engine clock is 5 ticks on
    backend_now = lambda: cluster.app.run_sync(lambda b: b.now())  # noqa: E731
    wait_until(lambda: backend_now() > last + 6, timeout=30, interval=0.2, message="5 s of downtime")
    cluster.node(app=APP, concurrency=1, lease=3, heartbeat=0.5)
    wait_until(lambda: len(tick_jobs(cluster.app)) >= len(before) + 3, timeout=90, interval=0.5, message="3 ticks")
    after = [j for j in tick_jobs(cluster.app) if j.idempotency_key not in before]
    first_new = min(tick_time(j) for j in after)
    missed = first_new - last - 1
    assert missed >= 3, f"the ticks of the downtime are skipped, not fired in a burst (first new {first_new - last})"
