"""Keep every held lease alive with one engine call per interval; stop jobs the engine disowns.

A job whose heartbeat answer is ``canceled`` or ``lost`` is stopped (its executor is killed
after the stop grace) and never completed: its outcome would be refused anyway, and another
node may already run it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from conveyor.backend.protocol import Backend, HeartbeatRequest
from conveyor.telemetry import Telemetry
from conveyor.worker.jobrun import JobRun
from conveyor.worker.logs import log
from conveyor.worker.stop import StopReason


async def heartbeat_loop(
    backend: Backend, held: Mapping[str, JobRun], interval: float, lease: float, telemetry: Telemetry
) -> None:
    """Extend the lease of every job in ``held`` every ``interval`` seconds, until canceled.

    Settling jobs are in ``held`` too: recording an outcome may take a while, and a lease
    that expired meanwhile would let the reaper requeue a job that already ran.
    """
    while True:
        await asyncio.sleep(interval)
        runs = list(held.values())
        if not runs:
            continue
        try:
            beat = backend.heartbeat(HeartbeatRequest(tuple(r.lease for r in runs), lease))
            statuses = await telemetry.timed("heartbeat", beat)
        except Exception as exc:
            log("worker.heartbeat_error", logging.WARNING, error=f"{type(exc).__name__}: {exc}", jobs=len(runs))
            continue
        for run in runs:
            reason = StopReason.from_heartbeat(statuses.get(run.job.id, "ok"))
            if reason is not None and run.stop(reason):
                log("job.stopping", logging.WARNING, id=run.job.id, task=run.job.task, reason=reason)
