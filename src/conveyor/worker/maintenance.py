"""Housekeeping every node does: reap expired leases, promote due jobs, prune old ones, drain
the notification outbox into webhook deliveries, and enqueue periodic jobs (worker/scheduler.py).

Every node runs it, so there is no single "scheduler" process to lose: each operation is one
atomic, idempotent backend call, and two nodes doing it at once is harmless. Intervals are
jittered so a fleet started together does not hit the engine in lockstep.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

from conveyor.backend.protocol import Backend, ForgetWorkersRequest, PauseRequest, PruneRequest
from conveyor.reaper import reap_expired
from conveyor.storage.retention import sweep
from conveyor.storage.store import FileStore
from conveyor.worker.config import MaintenanceConfig
from conveyor.worker.logs import log

if TYPE_CHECKING:
    from conveyor.app import Conveyor

T = TypeVar("T")
OUTBOX_INTERVAL = 1.0
"""Seconds between two looks at the outbox when no job ended on this node meanwhile (a job that
ends here wakes the consumer at once, so this only bounds the latency of other nodes' ends)."""


def jittered(interval: float, jitter: float, rng: random.Random | None = None) -> float:
    """``interval`` scaled by a uniform factor in [1 - jitter, 1 + jitter]."""
    return interval * (rng or random).uniform(1.0 - jitter, 1.0 + jitter)


class Maintenance:
    def __init__(self, backend: Backend, config: MaintenanceConfig, app: Conveyor | None = None) -> None:
        self.backend = backend
        self.config = config
        self.app = app

    async def _timed(self, operation: str, call: Awaitable[T]) -> T:
        """Measured through the app's telemetry seam when there is an app (always on a node)."""
        return await (self.app.telemetry.timed(operation, call) if self.app is not None else call)

    async def reap(self) -> None:
        reaped = await self._timed("reap_expired", reap_expired(self.backend))
        if reaped:
            log("maintenance.reaped", logging.WARNING, jobs=len(reaped), ids=",".join(reaped[:20]))

    async def promote(self) -> None:
        promoted = await self._timed("promote_scheduled", self.backend.promote_scheduled())
        if promoted:
            log("maintenance.promoted", logging.DEBUG, jobs=promoted)

    async def prune(self) -> None:
        """Delete old finished jobs (per-queue ``QueueConfig.retention``, else the node's), then
        their files: artifacts, and uploads no remaining job takes (``storage.retention``)."""
        queues = () if self.app is None else self.app.queue_retention()
        request = PruneRequest(older_than=self.config.retention, queues=queues)
        deleted = await self._timed("prune", self.backend.prune(request))
        if deleted:
            log("maintenance.pruned", jobs=deleted, retention_s=self.config.retention)
        if self.app is not None and isinstance(self.app.result_store, FileStore):

            async def exists(job_id: str) -> bool:
                return await self.backend.get(job_id) is not None

            swept = await sweep(self.app.result_store, exists)
            if swept.jobs or swept.uploads:
                log("maintenance.files_deleted", jobs=swept.jobs, uploads=swept.uploads)

    async def forget_dead_workers(self) -> None:
        """Drop registry entries of nodes that died without leaving, once silent long enough."""
        silent = self.config.forget_workers_after
        forgotten = await self._timed(
            "forget_workers", self.backend.forget_workers(ForgetWorkersRequest(silent_for=silent))
        )
        if forgotten:
            log("maintenance.forgot_workers", workers=forgotten, silent_s=silent)

    async def notify(self) -> None:
        """Drain the outbox: a delivery job per receiver of each ended job, then acknowledge.

        Runs until canceled; woken by the consumer's nudge (a job ended on this node) or every
        ``OUTBOX_INTERVAL`` seconds (jittered), whichever comes first.
        """
        assert self.app is not None
        from conveyor.webhooks.notifier import OutboxConsumer  # the app layer, above the worker's

        consumer = OutboxConsumer(self.app, self.backend)
        detach = consumer.attach()
        try:
            while True:
                try:
                    taken = await consumer.drain()
                    if taken:
                        log("maintenance.outbox", logging.DEBUG, entries=taken)
                except Exception as exc:  # engine down for a moment: the entries wait in the engine
                    log("maintenance.error", logging.WARNING, action="notify", error=f"{type(exc).__name__}: {exc}")
                await consumer.wait(jittered(OUTBOX_INTERVAL, self.config.jitter))
        finally:
            detach()

    async def apply_declared_pauses(self) -> None:
        """A queue declared ``paused = true`` (or ``false``) is set so when the node starts; a queue
        that does not say is left as an operator set it (``conveyor queues pause/resume``)."""
        assert self.app is not None
        for config in self.app.queues.values():
            if config.paused is not None:
                try:
                    await self.backend.set_paused(PauseRequest(config.name, config.paused))
                except Exception as exc:
                    log("maintenance.error", logging.WARNING, action="pause", error=f"{type(exc).__name__}: {exc}")

    async def _every(self, interval: float, action: Callable[[], Awaitable[None]], first_delay: float) -> None:
        await asyncio.sleep(first_delay)
        while True:
            try:
                await action()
            except Exception as exc:  # engine down for a moment: try again next round
                log("maintenance.error", logging.WARNING, action=action.__name__, error=f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(jittered(interval, self.config.jitter))

    async def run(self) -> None:
        """Run the loops until canceled (the outbox one only with an app to announce for)."""
        cfg = self.config
        loops = [
            self._every(cfg.reap_interval, self.reap, jittered(cfg.reap_interval, cfg.jitter) / 2),
            self._every(cfg.promote_interval, self.promote, jittered(cfg.promote_interval, cfg.jitter) / 2),
            self._every(cfg.prune_interval, self.prune, jittered(min(cfg.prune_interval, 60.0), cfg.jitter)),
            self._every(60.0, self.forget_dead_workers, jittered(30.0, cfg.jitter)),
        ]
        if self.app is not None:
            await self.apply_declared_pauses()
            loops.append(self.notify())
            if self.app.schedules:
                from conveyor.worker.scheduler import Scheduler

                loops.append(Scheduler(self.app, self.backend).run())
        await asyncio.gather(*loops)
