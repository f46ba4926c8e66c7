"""Grow and shrink the executor pool between --concurrency and --max-concurrency by backlog.

The decision is a pure function of what the node sees (pool size, busy executors, runnable
backlog of its queues, age of the oldest runnable job, how long the pool has been idle), so
it is unit-tested without processes. Growth is fast (waiting jobs cost latency), shrinking
slow and one at a time (a spawned executor costs a second of CPU; flapping wastes it).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from conveyor.backend.protocol import Backend
from conveyor.types import QueueStats
from conveyor.worker.config import AutoscaleConfig
from conveyor.worker.logs import log
from conveyor.worker.pool import ExecutorPool


@dataclass(frozen=True)
class ScaleInput:
    current: int
    minimum: int
    maximum: int
    busy: int
    """Jobs this node is running or about to run in executors."""
    backlog: int
    """Runnable jobs waiting in the node's queues (all nodes' view)."""
    oldest_age: float | None
    """Seconds the oldest runnable job has waited; None when there is none."""
    idle_for: float
    """Seconds the pool has continuously had idle executors and no backlog."""


def decide(inp: ScaleInput, policy: AutoscaleConfig) -> int:
    """The pool size to aim for. Always within [minimum, maximum]."""
    current = max(inp.minimum, min(inp.maximum, inp.current))
    saturated = inp.busy >= current
    waited = (inp.oldest_age or 0.0) >= policy.scale_up_age
    if inp.backlog > 0 and saturated and waited:
        step = max(1, min(policy.max_step, inp.backlog))
        return min(inp.maximum, current + step)
    if inp.backlog == 0 and inp.busy < current and inp.idle_for >= policy.scale_down_idle:
        return max(inp.minimum, inp.busy, current - 1)
    return current


def backlog_of(stats: list[QueueStats], queues: tuple[str, ...]) -> tuple[int, float | None]:
    """Runnable depth and oldest wait over the node's queues (paused queues do not count)."""
    depth, oldest = 0, None
    for s in stats:
        if s.queue not in queues or s.paused:
            continue
        depth += s.counts.get("queued", 0)
        if s.oldest_queued_age is not None:
            oldest = s.oldest_queued_age if oldest is None else max(oldest, s.oldest_queued_age)
    return depth, oldest


class Autoscaler:
    def __init__(
        self,
        backend: Backend,
        pool: ExecutorPool,
        queues: tuple[str, ...],
        minimum: int,
        maximum: int,
        policy: AutoscaleConfig,
        busy: Callable[[], int],
        on_resize: Callable[[], None],
    ) -> None:
        self.backend = backend
        self.pool = pool
        self.queues = queues
        self.minimum = minimum
        self.maximum = maximum
        self.policy = policy
        self.busy = busy
        self.on_resize = on_resize
        self._idle_since: float | None = None

    async def step(self) -> int:
        stats = await self.backend.queue_stats()
        backlog, oldest = backlog_of(stats, self.queues)
        busy = self.busy()
        now = time.monotonic()
        if backlog == 0 and busy < self.pool.target:
            self._idle_since = self._idle_since if self._idle_since is not None else now
        else:
            self._idle_since = None
        idle_for = now - self._idle_since if self._idle_since is not None else 0.0
        inp = ScaleInput(self.pool.target, self.minimum, self.maximum, busy, backlog, oldest, idle_for)
        target = decide(inp, self.policy)
        if target != self.pool.target:
            log("autoscale", previous=self.pool.target, target=target, backlog=backlog, busy=busy, oldest_age=oldest)
            self.pool.resize(target)
            self._idle_since = None
            self.on_resize()
        return target

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.policy.interval)
            try:
                await self.step()
            except Exception as exc:
                log("autoscale.error", logging.WARNING, error=f"{type(exc).__name__}: {exc}")
