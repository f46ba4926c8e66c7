"""The periodic-job loop every worker node runs in its maintenance: enqueue each schedule's ticks.

There is no leader. Every node computes the same ticks on the engine's clock and enqueues each
with the tick's idempotency key (``Schedule.key``), so the engine keeps exactly one job per tick
however many nodes race, crash or restart (DESIGN §8). A node's cursor is the engine time of its
last pass: while it runs, every tick after its cursor is enqueued (a slow pass never skips one);
when it starts, it looks back only ``Schedule.lookback`` (one period, at most 60 s), so a fleet
that was down does not fire a burst of missed ticks; with ``catch_up`` it starts from the
schedule's last enqueued tick instead (found among the task's newest jobs), within the
idempotency retention so every caught-up tick is still deduplicated.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from conveyor.backend.protocol import Backend, JobFilter
from conveyor.errors import ConveyorError, QueueFull
from conveyor.schedules import Schedule, tick_of
from conveyor.task import CallOptions
from conveyor.worker.logs import log

if TYPE_CHECKING:
    from conveyor.app import Conveyor

MAX_SLEEP = 1.0
"""Longest wait between two passes (new ticks are computed at least this often)."""
MIN_SLEEP = 0.02
LAST_TICK_SCAN = 200
"""How many of a task's newest jobs ``catch_up`` looks through for its schedule's last tick."""


class Scheduler:
    def __init__(self, app: Conveyor, backend: Backend) -> None:
        self.app = app
        self.backend = backend
        self.cursors: dict[str, float] = {}
        """Per schedule: the engine time up to which this node enqueued every tick."""

    async def run_once(self) -> float:
        """Enqueue every due tick; answer the seconds until the next one (capped at MAX_SLEEP)."""
        now = await self.backend.now()
        wait = MAX_SLEEP
        for sched in self.app.schedules.values():
            start = self.cursors.get(sched.name)
            if start is None:
                start = await self._start(sched, now)
            done_until = await self._enqueue_ticks(sched, start, now)
            self.cursors[sched.name] = done_until
            wait = min(wait, sched.next_after(now) - now)
        return max(MIN_SLEEP, wait)

    async def _start(self, sched: Schedule, now: float) -> float:
        """Where a node that just started begins: one lookback ago, or (``catch_up``) from the
        schedule's last enqueued tick, no further back than the idempotency retention."""
        start = now - sched.lookback(now)
        if not sched.catch_up:
            return start
        last = await self._last_tick(sched)
        if last is None:
            return start
        return max(min(last, start), now - self.app.idempotency_ttl)

    async def _last_tick(self, sched: Schedule) -> float | None:
        """The newest tick of ``sched`` among its task's newest jobs (None if none is found)."""
        page = await self.backend.list_jobs(JobFilter(task=sched.task, limit=LAST_TICK_SCAN))
        ticks = [
            t[1] for j in page.jobs if j.idempotency_key and (t := tick_of(j.idempotency_key)) and t[0] == sched.name
        ]
        return max(ticks) if ticks else None

    async def _enqueue_ticks(self, sched: Schedule, after: float, now: float) -> float:
        """Enqueue the ticks in (after, now]; answer how far it got (``now`` unless the engine failed)."""
        for tick in sched.ticks(after, now):
            options = CallOptions(idempotency_key=sched.key(tick))
            try:
                result = await self.app.submit_async(sched.task, dict(sched.args), options)
            except QueueFull as exc:  # backpressure: this tick is skipped, like a missed one
                log("schedule.skipped", logging.WARNING, schedule=sched.name, tick=tick, reason=str(exc))
                continue
            except ConveyorError as exc:
                # engine unavailable (or a bug in the schedule): retry this tick on the next pass
                log("schedule.error", logging.WARNING, schedule=sched.name, tick=tick, error=str(exc))
                return tick - 1e-6
            if result.created:
                log("schedule.enqueued", logging.INFO, schedule=sched.name, tick=tick, id=result.job.id)
        return now

    async def run(self) -> None:
        """Pass after pass until canceled; an engine error waits a second and tries again."""
        while True:
            try:
                wait = await self.run_once()
            except Exception as exc:
                log("maintenance.error", logging.WARNING, action="schedule", error=f"{type(exc).__name__}: {exc}")
                wait = MAX_SLEEP
            await asyncio.sleep(wait)
