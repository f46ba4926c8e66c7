"""Stopping a node: the first request drains (finish within the grace), the second stops now."""

from __future__ import annotations

import asyncio
import signal

from conveyor.worker.aio import first_of
from conveyor.worker.execution import JobRunner
from conveyor.worker.logs import log
from conveyor.worker.stop import StopReason

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Shutdown:
    """The node's two-step stop (SIGTERM/SIGINT or ``request``)."""

    def __init__(self) -> None:
        self.draining = asyncio.Event()
        """Set by the first request: claim nothing more, let running jobs finish."""
        self.fast_stop = asyncio.Event()
        """Set by the second request: stop and hand back every job now."""

    def request(self, sig: signal.Signals | None = None, running: int = 0, grace: float = 0.0) -> None:
        """First call: drain. Second: stop now."""
        name = sig.name if sig is not None else "request"
        if self.draining.is_set():
            log("worker.shutdown_now", signal=name)
            self.fast_stop.set()
        else:
            log("worker.draining", signal=name, running=running, grace=grace)
            self.draining.set()

    async def drain(self, runner: JobRunner, grace: float, patience: float) -> None:
        """Let running jobs finish within ``grace``, then stop the rest and hand them back.

        Jobs still waiting for a slot are handed back at once; every job task then gets up to
        ``patience`` seconds to record its outcome or hand-back before the node exits anyway
        (an unrecorded job's lease expires and the reaper requeues it).
        """
        runner.stop_all(StopReason.SHUTDOWN, waiting_only=True)  # never started: hand back at once
        if runner.held and not self.fast_stop.is_set():
            await first_of(runner.all_done(), self.fast_stop.wait(), asyncio.sleep(grace))
        runner.stop_all(StopReason.SHUTDOWN)
        if runner.tasks:
            await asyncio.wait(set(runner.tasks), timeout=patience)
