"""Clock skew: a worker whose clock is 5 minutes ahead or behind runs nothing early and reaps
nothing early, because leases, delays and schedules are decided on the engine's clock.

PostgreSQL and Redis: the skewed worker runs under libfaketime (``LD_PRELOAD``, Debian's
``libfaketime``; ``FAKETIME=+5m`` or ``-5m``): its wall clock (``time.time()``, ``datetime``) is
5 minutes off while the engine's is not.

SQLite has no clock of its own: the engine clock is the wall clock of the host, read by the
process that writes (``time.time()`` in the engine). All processes of a host share that clock,
and SQLite is single-host, so a worker cannot disagree with "the engine" about wall time (under
libfaketime it would simply *be* a skewed engine: not a fault a real deployment can have). What
does differ between processes is the monotonic clock (a time namespace, a restarted VM): the
SQLite variant runs the skewed worker in a time namespace (``unshare --time``) with
CLOCK_MONOTONIC and CLOCK_BOOTTIME 5 minutes ahead or behind, which would show any deadline a
worker computed from its monotonic clock and handed to another process. The same checks apply.

Checked, with the skewed node S on queue ``skewed`` and a normal node N on ``default``:
delayed jobs S runs start no earlier than their ``run_at`` (engine clock) and not 5 minutes
late; N's jobs that outlive a lease but heartbeat are never reaped by S's maintenance; when N
is SIGKILLed, S reaps its job within the deadline (not 5 minutes late); the ledger holds.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conveyor.types import JobState
from tests.chaos.conftest import LONG
from tests.chaos.ledger import lease_expiries
from tests.engines import unavailable
from tests.faults.helpers import Cluster, WorkerNode, cluster, wait_until

__all__ = ["cluster"]  # fixture: worker nodes on a fresh store of each engine

pytestmark = pytest.mark.chaos
LIBFAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1")
LEASE = 2.0
NODE = {"concurrency": 2, "lease": LEASE, "heartbeat": 0.3, "extra": ("--reap-interval", "0.3")}
DELAY = 3.0
PRINT_TIME = "import time; print(time.time())"
PRINT_MONOTONIC = "import time; print(time.monotonic())"


def skewed_env(offset: str) -> dict[str, str]:
    if not LIBFAKETIME.exists():
        unavailable(f"libfaketime is not installed ({LIBFAKETIME}; Debian package libfaketime)")
    return {
        "LD_PRELOAD": str(LIBFAKETIME),
        "FAKETIME": offset,
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        "DONT_FAKE_MONOTONIC": "1",
    }


def start_skewed(cluster: Cluster, seconds: int) -> WorkerNode:
    """Start S: wall clock off by ``seconds`` (faketime) or, on SQLite, monotonic clocks off."""
    if cluster.url.startswith("sqlite:"):
        if shutil.which("unshare") is None:
            unavailable("unshare (util-linux) is not installed")
        wrap = ["unshare", "--time", "--monotonic", str(seconds), "--boottime", str(seconds), "--fork"]
        probe = subprocess.run([*wrap, sys.executable, "-c", PRINT_MONOTONIC], capture_output=True, text=True)
        ahead = float(probe.stdout) - time.monotonic()
        assert abs(ahead - seconds) < 30, f"the time namespace did not shift the monotonic clock ({ahead:.0f} s)"
        env = {"CONVEYOR_RESULTS": str(cluster.tmp_path / "results")}
        node = WorkerNode(cluster.url, cluster.tmp_path / "logs", queues="skewed", env=env, **NODE)  # type: ignore[arg-type]
        node.args = wrap + node.args
        cluster.nodes.append(node.start())
        return node
    env = skewed_env(f"{'+' if seconds > 0 else '-'}{abs(seconds) // 60}m")
    probe = subprocess.run(
        [sys.executable, "-c", PRINT_TIME], env={**os.environ, **env}, capture_output=True, text=True
    )
    ahead = float(probe.stdout) - time.time()
    assert abs(ahead - seconds) < 30, f"libfaketime did not skew the clock ({ahead:.0f} s)"
    return cluster.node(queues="skewed", env=env, **NODE)


SKEWS = [300, -300] if LONG else [300]
"""Quick mode: 5 minutes ahead (the direction that would run jobs and reap leases early);
``CONVEYOR_CHAOS=long`` adds 5 minutes behind (which would run and reap them late)."""


@pytest.mark.parametrize("skew", SKEWS, ids=["ahead", "behind"][: len(SKEWS)])
def test_a_skewed_worker_runs_nothing_early_and_reaps_nothing_early(cluster: Cluster, skew: int) -> None:
    normal = cluster.node(**NODE)
    skewed = start_skewed(cluster, skew)
    for node in (normal, skewed):
        node.wait_for_log(r"executor\.started")

    # N's jobs outlive several leases; S's reaper must leave them alone while N heartbeats
    long_jobs = [cluster.app.enqueue("basic.sleep", {"seconds": 3 * LEASE}).id for _ in range(2)]
    # S runs delayed jobs: never before their run_at, and not 5 minutes late
    task = cluster.app.tasks["basic.add"].with_options(delay=DELAY, queue="skewed")
    delayed = [task.enqueue(a=i, b=1).id for i in range(4)]
    for job_id in delayed:
        job = cluster.wait_state(job_id, JobState.SUCCEEDED, timeout=60)
        assert job.started_at is not None and job.run_at is not None
        assert job.started_at >= job.run_at, f"ran {job.run_at - job.started_at:.2f} s early"
        assert job.worker_id == skewed.id
    for job_id in long_jobs:
        job = cluster.wait_state(job_id, JobState.SUCCEEDED, timeout=60)
        assert job.attempts == 1 and lease_expiries(cluster, job_id) == 0, "reaped while heartbeating"

    # N dies holding a job: S's maintenance reaps it on the engine's clock, not 5 minutes late
    victim = cluster.app.enqueue("basic.sleep", {"seconds": 30}).id
    cluster.wait_state(victim, JobState.RUNNING)
    normal.kill()
    wait_until(lambda: cluster.get(victim).state is not JobState.RUNNING, timeout=60, message="S to reap N's job")
    assert lease_expiries(cluster, victim) == 1
    assert skewed.running
