"""Housekeeping every node does: reap expired leases, promote due jobs, prune old ones.

Every node runs it, so there is no single "scheduler" process to lose: each operation is one
atomic, idempotent backend call, and two nodes doing it at once is harmless. Intervals are
jittered so a fleet started together does not hit the engine in lockstep.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable

from conveyor.backend.protocol import Backend, PruneRequest
from conveyor.reaper import reap_expired
from conveyor.worker.config import MaintenanceConfig
from conveyor.worker.logs import log


def jittered(interval: float, jitter: float, rng: random.Random | None = None) -> float:
    """``interval`` scaled by a uniform factor in [1 - jitter, 1 + jitter]."""
    return interval * (rng or random).uniform(1.0 - jitter, 1.0 + jitter)


class Maintenance:
    def __init__(self, backend: Backend, config: MaintenanceConfig) -> None:
        self.backend = backend
        self.config = config

    async def reap(self) -> None:
        reaped = await reap_expired(self.backend)
        if reaped:
            log("maintenance.reaped", logging.WARNING, jobs=len(reaped), ids=",".join(reaped[:20]))

    async def promote(self) -> None:
        promoted = await self.backend.promote_scheduled()
        if promoted:
            log("maintenance.promoted", logging.DEBUG, jobs=promoted)

    async def prune(self) -> None:
        deleted = await self.backend.prune(PruneRequest(older_than=self.config.retention))
        if deleted:
            log("maintenance.pruned", jobs=deleted, retention_s=self.config.retention)

    async def _every(self, interval: float, action: Callable[[], Awaitable[None]], first_delay: float) -> None:
        await asyncio.sleep(first_delay)
        while True:
            try:
                await action()
            except Exception as exc:  # engine down for a moment: try again next round
                log("maintenance.error", logging.WARNING, action=action.__name__, error=f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(jittered(interval, self.config.jitter))

    async def run(self) -> None:
        """Run the three loops until canceled."""
        cfg = self.config
        await asyncio.gather(
            self._every(cfg.reap_interval, self.reap, jittered(cfg.reap_interval, cfg.jitter) / 2),
            self._every(cfg.promote_interval, self.promote, jittered(cfg.promote_interval, cfg.jitter) / 2),
            self._every(cfg.prune_interval, self.prune, jittered(min(cfg.prune_interval, 60.0), cfg.jitter)),
        )
