"""The autoscaler's decision function, and one real scale-up (and back down) of a node's pool."""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor.types import JobState, QueueStats
from conveyor.worker.autoscaler import ScaleInput, backlog_of, decide
from conveyor.worker.config import AutoscaleConfig
from tests.faults.helpers import Cluster, wait_until

POLICY = AutoscaleConfig(scale_up_age=0.5, scale_down_idle=30.0, max_step=2)


def inp(**kw: float | int | None) -> ScaleInput:
    base: dict[str, float | int | None] = {
        "current": 2,
        "minimum": 1,
        "maximum": 8,
        "busy": 2,
        "backlog": 0,
        "oldest_age": None,
        "idle_for": 0.0,
    }
    base.update(kw)
    return ScaleInput(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        (inp(backlog=10, oldest_age=2.0), 4),  # saturated with an old backlog: grow by max_step
        (inp(backlog=1, oldest_age=2.0), 3),  # ... but not by more than the backlog
        (inp(current=7, busy=7, backlog=10, oldest_age=2.0), 8),  # ... and never above the maximum
        (inp(current=8, busy=8, backlog=10, oldest_age=9.0), 8),
        (inp(backlog=10, oldest_age=0.1), 2),  # backlog too fresh: the busy pool may catch up
        (inp(busy=1, backlog=10, oldest_age=2.0), 2),  # an idle executor will take it: no growth
        (inp(busy=0, idle_for=31.0), 1),  # idle long enough: shrink by one
        (inp(current=5, busy=0, idle_for=31.0), 4),  # one at a time
        (inp(busy=0, idle_for=5.0), 2),  # not idle long enough
        (inp(current=1, busy=0, idle_for=99.0), 1),  # never below the minimum
        (inp(current=4, busy=3, idle_for=31.0), 3),  # never below what is busy
        (inp(busy=1, backlog=3, oldest_age=0.0, idle_for=99.0), 2),  # backlog: no shrinking
        (inp(current=0, busy=0), 1),  # out-of-range input is clamped
    ],
)
def test_decide(case: ScaleInput, expected: int) -> None:
    assert decide(case, POLICY) == expected


def test_backlog_counts_only_served_unpaused_queues() -> None:
    stats = [
        QueueStats("a", {"queued": 3}, 4.0),
        QueueStats("b", {"queued": 5}, 9.0),
        QueueStats("c", {"queued": 7}, 20.0, paused=True),
    ]
    assert backlog_of(stats, ("a", "b", "c")) == (8, 9.0)
    assert backlog_of(stats, ("a",)) == (3, 4.0)
    assert backlog_of([], ("a",)) == (0, None)


def test_a_backlog_grows_the_pool_and_idleness_shrinks_it(cluster: Cluster, tmp_path: Path) -> None:
    release = tmp_path / "release"
    log = tmp_path / "starts.log"
    task = cluster.app.get_task("basic.wait_for_file")
    ids = [task.enqueue(path=str(release), log=str(log)).id for _ in range(5)]
    node = cluster.node(concurrency=1, extra=("--max-concurrency", "3", "--scale-down-idle", "1"))

    def running_at_once() -> bool:
        # each line is written when a job starts; none can finish before `release` exists
        return log.exists() and len(log.read_text().splitlines()) >= 3

    wait_until(running_at_once, message="three jobs running at once on a node started with one executor")
    assert len(set(line.split()[2] for line in log.read_text().splitlines())) >= 3
    node.wait_for_log(r"autoscale previous=1 target=[23]")
    release.touch()
    assert all(j.state is JobState.SUCCEEDED for j in cluster.wait_all(ids))
    node.wait_for_log(r"autoscale previous=3 target=2")
