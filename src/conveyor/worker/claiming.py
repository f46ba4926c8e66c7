"""The claim loop: take as many jobs as the node has room for, in one engine call.

How many is ``Capacity.to_claim``. When nothing is claimable the loop sleeps in
``backend.wait_for_work`` (woken by the engine's notification) instead of polling; when the
node is full it sleeps until a slot frees (``capacity_changed``). It never crashes the node:
an engine error backs off and tries again.
"""

from __future__ import annotations

import asyncio
import logging

from conveyor.backend.protocol import Backend, ClaimRequest
from conveyor.resources import ResourceGate
from conveyor.telemetry import JobClaimed, Telemetry
from conveyor.types import Job
from conveyor.worker.aio import first_of
from conveyor.worker.capacity import Capacity
from conveyor.worker.config import WorkerConfig
from conveyor.worker.execution import JobRunner
from conveyor.worker.logs import log

CLAIM_RETRY = 0.5
"""Seconds to back off after a failed claim."""
CLAIM_LINGER = 0.005
"""Longest wait for more slots to free up before claiming a partial batch (see ``_gather``)."""


class ClaimLoop:
    def __init__(
        self,
        backend: Backend,
        config: WorkerConfig,
        capacity: Capacity,
        runner: JobRunner,
        capacity_changed: asyncio.Event,
        draining: asyncio.Event,
        telemetry: Telemetry,
        work_hint: asyncio.Event | None = None,
        gate: ResourceGate | None = None,
    ) -> None:
        self.telemetry = telemetry
        self.work_hint = work_hint or asyncio.Event()
        """Set when this node's own commit may have made a job claimable (a released fan-in):
        an idle wait ends at once instead of at the engine's next wake-up."""
        self.gate = gate
        """What the node has of each resource; None (or no resource queue): plain claims only."""
        self.backend = backend
        self.config = config
        self.capacity = capacity
        self.runner = runner
        self.capacity_changed = capacity_changed
        """Set whenever a slot may have come free (a job ended, the pool changed)."""
        self.draining = draining

    async def run(self) -> None:
        """Claim and start jobs until the node drains (or, in burst mode, runs out of work)."""
        cfg = self.config
        while not self.draining.is_set():
            free = self.capacity.to_claim()
            if free <= 0:
                self.capacity_changed.clear()
                await first_of(self.capacity_changed.wait(), self.draining.wait())
                continue
            free = await self._gather(free)
            self.work_hint.clear()  # a hint set from here on is about a commit this claim may miss
            gated = self.gate is not None and bool(self.gate.queues)
            if gated:
                self.capacity_changed.clear()  # a job ending from here on may free a resource: wake
            try:
                jobs = await self._claim(free)
            except Exception as exc:  # engine hiccup: back off, never crash the node
                log("worker.claim_error", logging.WARNING, error=f"{type(exc).__name__}: {exc}")
                await first_of(asyncio.sleep(CLAIM_RETRY), self.draining.wait())
                continue
            for job in jobs:
                self.telemetry.emit(JobClaimed(job))
                self.runner.start(job)
            if jobs:
                continue
            if cfg.burst:
                if not self.runner.held:
                    log("worker.burst_done", id=cfg.worker_id)
                    self.draining.set()
                    return
                self.capacity_changed.clear()
                await first_of(self.capacity_changed.wait(), self.draining.wait(), asyncio.sleep(cfg.poll_interval))
                continue
            if gated:
                assert self.gate is not None
                open_queues = cfg.queues + tuple(q for q in self.gate.queues if self.gate.room(q) > 0)
                await first_of(
                    self.backend.wait_for_work(open_queues, cfg.poll_interval),
                    self.draining.wait(),
                    self.capacity_changed.wait(),
                    self.work_hint.wait(),
                )
                continue
            await first_of(
                self.backend.wait_for_work(cfg.queues, cfg.poll_interval), self.draining.wait(), self.work_hint.wait()
            )

    async def _claim(self, free: int) -> list[Job]:
        """Up to ``free`` jobs of the node's queues, then of each resource queue as many as fit."""
        cfg = self.config
        claim = self.backend.claim(ClaimRequest(cfg.worker_id, cfg.queues, free, cfg.lease))
        jobs: list[Job] = await self.telemetry.timed("claim", claim)
        if self.gate is None:
            return jobs
        for queue in self.gate.queues:
            room = min(free - len(jobs), self.gate.room(queue))
            if room <= 0:
                continue
            claim = self.backend.claim(ClaimRequest(cfg.worker_id, (queue,), room, cfg.lease))
            got: list[Job] = await self.telemetry.timed("claim", claim)
            for job in got:
                self.gate.take(job)
            jobs += got
        return jobs

    async def _gather(self, free: int) -> int:
        """Let a few more slots free up (at most ``CLAIM_LINGER``) before claiming a small batch.

        Claiming as soon as one slot frees makes a busy node settle into claims (and then
        acknowledgements) of one or two jobs: a round trip and a commit per job or two. Waiting
        until ``Capacity.batch_goal`` slots are free, or a few milliseconds, claims in real
        batches. An idle node (nothing running) claims at once, so pickup latency does not change.
        """
        want = self.capacity.batch_goal()
        if free >= want or self.capacity.running == 0:
            return free
        loop = asyncio.get_running_loop()
        deadline = loop.time() + CLAIM_LINGER
        while free < want and not self.draining.is_set():
            remaining = deadline - loop.time()
            if remaining <= 0 or self.capacity.running == 0:
                break
            self.capacity_changed.clear()
            await first_of(self.capacity_changed.wait(), self.draining.wait(), asyncio.sleep(remaining))
            free = self.capacity.to_claim()
        return free
