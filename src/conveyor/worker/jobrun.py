"""What the supervisor knows about one claimed job while it holds the lease."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from conveyor.backend.protocol import Lease
from conveyor.dependencies import Dependency
from conveyor.types import Job
from conveyor.worker.stop import StopReason


@dataclass
class JobRun:
    job: Job
    started: float = field(default_factory=time.monotonic)
    stop_reason: StopReason | None = None
    stopped: asyncio.Event = field(default_factory=asyncio.Event)
    executing: bool = False
    """True once task code runs (an executor or an async slot was obtained)."""
    settling: bool = False
    """True once the outcome is known and is being recorded: stop requests no longer apply."""
    dependencies: list[Dependency] = field(default_factory=list)
    """The job's dependencies as read before its task started (``ctx.dependencies``)."""
    overrun_to: str | None = None
    """The overflow queue the job moves to if it is stopped for running past ``max_runtime``."""
    timer: asyncio.TimerHandle | None = None
    """The pending overrun stop (``worker.overrun.arm``), canceled when the run ends."""

    @property
    def lease(self) -> Lease:
        assert self.job.lease_token is not None
        return Lease(self.job.id, self.job.lease_token)

    def stop(self, reason: StopReason) -> bool:
        """Ask the job to stop; the first reason wins. False if it is already stopping or settled."""
        if self.stop_reason is not None or self.settling:
            return False
        self.stop_reason = reason
        self.stopped.set()
        return True

    def task_stop_reason(self) -> StopReason | None:
        """What ``ctx.cancelled`` reports: a cancel or a lost lease (a shutdown kills instead)."""
        reason = self.stop_reason
        return reason if reason is not None and reason.tells_task else None

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started
