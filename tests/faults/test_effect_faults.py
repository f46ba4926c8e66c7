"""A node paused past its lease cannot record a once-only effect after another node took over.

Real worker processes and real signals: the first node's supervisor and its executor are
SIGSTOPped while the task is at a gate (before ``ctx.once``, or inside the effect after
``once`` found no record), the lease expires, a second node reaps and runs the job, recording
the effect. Then the first node's executor resumes (its supervisor still frozen, so nothing
stops the task early): its record is refused (``LeaseLost``) or it finds the new owner's
record. The stored value is always the new owner's; the stale node ran the effect at most
once, and only if it had started it before the pause.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from conveyor.backend.protocol import EnqueueRequest
from conveyor.types import JobState
from tests.faults.helpers import Cluster, cluster, freeze, wait_until

__all__ = ["cluster"]  # the fixture

pytestmark = pytest.mark.faults

EFFECTS_APP = "tests.apps.effects_app:app"


def steps(log: Path, name: str, attempt: int | None = None) -> list[dict[str, Any]]:
    """The task's logged steps called ``name`` (of one attempt when given)."""
    if not log.exists():
        return []
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    return [s for s in lines if s["step"] == name and (attempt is None or s["attempt"] == attempt)]


@pytest.mark.parametrize("hold", ["before_once", "inside_effect"])
def test_a_paused_node_cannot_record_an_effect_after_another_took_over(
    cluster: Cluster, tmp_path: Path, hold: str
) -> None:
    log, gate = tmp_path / "effects.log", tmp_path / "gate"
    first = cluster.node(app=EFFECTS_APP, concurrency=1, lease=1.0, worker_id="node-first")
    args = {"log": str(log), "gate": str(gate), "hold": hold}
    job = cluster.app.run_sync(lambda b: b.enqueue(EnqueueRequest("effects.gated_charge", args))).job
    [held] = wait_until(lambda: steps(log, "held", 1), message="the first attempt to reach the gate")
    freeze(first, cluster.url)
    os.kill(held["pid"], signal.SIGSTOP)  # the executor too: the whole node is paused
    try:
        gate.touch()  # only the new owner can pass it while the first node is stopped
        cluster.node(app=EFFECTS_APP, concurrency=1, lease=1.0, worker_id="node-second")
        done = cluster.wait_state(job.id, JobState.SUCCEEDED)
        owner_value = {"attempt": done.attempts, "worker": "node-second"}
        assert done.attempts >= 2 and done.result == owner_value
        os.kill(held["pid"], signal.SIGCONT)  # its supervisor stays frozen: the task runs on to its record
        stale_end = "refused" if hold == "inside_effect" else "returned"
        [stale] = wait_until(lambda: steps(log, stale_end, 1), message=f"the stale attempt to be {stale_end}")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(held["pid"], signal.SIGCONT)
        first.signal(signal.SIGCONT)
    first.wait_for_log(rf"job\.(refused|stopped|stopping)\b.*id={job.id}|id={job.id}.*reason=lease_lost")

    if hold == "before_once":
        assert stale["value"] == owner_value  # the stale task saw the new owner's record and ran nothing
    final = cluster.get(job.id)
    assert final.state is JobState.SUCCEEDED and final.result == owner_value and final.worker_id == "node-second"
    assert cluster.app.run_sync(lambda b: b.get_effect(job.id, "charge")) == (True, owner_value)
    # The contract: the new owner ran the effect once; the stale node at most once, and only if
    # it was already inside the effect when it was paused (at-least-once: then it ran twice).
    assert len(steps(log, "effect", done.attempts)) == 1
    assert len(steps(log, "effect", 1)) == (1 if hold == "inside_effect" else 0)
    assert steps(log, "returned", 1) == ([] if hold == "inside_effect" else [stale])
