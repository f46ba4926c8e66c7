"""How much work a node may hold: a pure bookkeeping object, no asyncio and no I/O.

The supervisor tells it what happens (a job started, its task returned, its outcome was
written, the executor pool was resized or stopped booting) and asks it two questions: how
many jobs to claim now, and how many finished jobs may still be settling while new ones run.
Keeping the arithmetic here makes every rule testable without processes or an engine
(tests/worker/test_capacity.py).

Two kinds of slot exist. A sync job runs in an executor process (``pool_target`` of them);
an async job runs in the supervisor's event loop (``async_concurrency`` at once). A claim
cannot ask the engine for one kind only, which shapes the rules for an app with both kinds:
see ``Capacity.sync_ceiling``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


class SlotKind(StrEnum):
    SYNC = "sync"
    """Runs in an executor process (also a job whose task this app does not know: it is
    reported as a failure without taking an async slot)."""
    ASYNC = "async"
    """An ``async def`` task, run in the supervisor's event loop."""


class _TaskLike(Protocol):
    @property
    def is_async(self) -> bool: ...


SYNC_PREFETCH_PER_EXECUTOR = 1
"""Sync jobs a node may hold, waiting for an executor, per executor: see ``sync_ceiling``."""


@dataclass
class Capacity:
    """Slots, jobs in flight and jobs settling on one node (see the module docstring)."""

    pool_target: int
    """Executor processes the pool aims for (the autoscaler changes it: ``pool_changed``)."""
    async_concurrency: int
    has_sync: bool
    """The app registers a sync task (an app with no async task counts as sync)."""
    has_async: bool
    pool_failing: bool = False
    """New executors keep failing to load the app (``ExecutorPool.failing``)."""
    sync_in_flight: int = 0
    """Sync jobs held whose task has not returned: running in an executor or waiting for one."""
    async_in_flight: int = 0
    """Async jobs held whose task has not returned: running or waiting for an async slot."""
    settling: int = 0
    """Jobs whose task returned and whose outcome is being written; their slot is free again."""

    @classmethod
    def for_tasks(cls, tasks: Iterable[_TaskLike], pool_target: int, async_concurrency: int) -> Capacity:
        """The capacity of a node running an app with these tasks."""
        kinds = [t.is_async for t in tasks]
        has_async = any(kinds)
        has_sync = not has_async or not all(kinds)
        return cls(pool_target, async_concurrency, has_sync=has_sync, has_async=has_async)

    # -- the rules ------------------------------------------------------------------------------

    @property
    def sync_ceiling(self) -> int:
        """Most sync jobs a node holds before its task returns: one running plus one waiting
        per executor (``SYNC_PREFETCH_PER_EXECUTOR``).

        Why: a claim cannot ask for async jobs only, so an app with both kinds claims its free
        executors plus its free async slots, and any of those jobs may turn out to be sync.
        Claiming beyond this ceiling would let sync jobs pile up waiting for an executor on
        this node while other nodes sit idle; prefetching one job per executor keeps each
        executor busy as its job ends without hoarding work.

        The cost (a known limit, not a bug): once a mixed app's node holds ``sync_ceiling`` sync
        jobs it claims nothing at all, even with async slots free, because the next claim might
        bring yet more sync jobs. Fed a queue that mixes both kinds, such a node keeps about
        ``2 x pool_target`` jobs in flight. Lifting it needs a task-kind filter on the claim in
        every engine; until then, run async-heavy work in an app (or node) of its own.
        """
        return self.pool_target * (1 + SYNC_PREFETCH_PER_EXECUTOR)

    def _free_slots(self, sync_in_flight: int, async_in_flight: int) -> int:
        if self.pool_failing and self.has_sync:
            # Executors cannot start. A claim cannot ask for async jobs only, so a node that
            # kept claiming would take sync jobs just to hand them back, over and over, while
            # healthy nodes could run them: stop claiming until the pool boots again.
            return 0
        sync_free = self.pool_target - sync_in_flight
        if not self.has_async:
            return sync_free
        async_free = self.async_concurrency - async_in_flight
        if not self.has_sync:
            return async_free
        return min(sync_free + async_free, self.sync_ceiling - sync_in_flight)

    def settle_allowance(self) -> int:
        """How many finished jobs may wait for their outcome to be written while new ones run.

        A job's slot is free as soon as its task returns, so the next claim overlaps with the
        write of the previous outcomes (one round trip saved per batch). At most one full set
        of slots may be settling (at least one job): a slow engine cannot make the node hoard
        leases.
        """
        return max(1, self._free_slots(0, 0))

    def to_claim(self) -> int:
        """How many jobs to claim now (0: wait until something changes).

        Free slots, less the jobs settling beyond ``settle_allowance``.
        """
        free = self._free_slots(self.sync_in_flight, self.async_in_flight)
        return max(0, free - max(0, self.settling - self.settle_allowance()))

    def batch_goal(self) -> int:
        """Free slots worth one claim on a busy node: half the settle allowance (at least 1).

        The claim loop lingers briefly for this many before claiming a smaller batch, so a busy
        node claims (and acknowledges) in real batches instead of one job at a time.
        """
        return max(1, self.settle_allowance() // 2)

    @property
    def running(self) -> int:
        """Jobs held whose task has not returned (0: the node is idle, claim without lingering)."""
        return self.sync_in_flight + self.async_in_flight

    # -- events ---------------------------------------------------------------------------------

    def started(self, kind: SlotKind) -> None:
        """A claimed job takes a slot of its kind (it may still wait for an executor)."""
        if kind is SlotKind.ASYNC:
            self.async_in_flight += 1
        else:
            self.sync_in_flight += 1

    def ended(self, kind: SlotKind) -> None:
        """A job leaves without settling on a free slot (stopped, handed back, supervisor error)."""
        if kind is SlotKind.ASYNC:
            self.async_in_flight = _decremented(self.async_in_flight, "async jobs in flight")
        else:
            self.sync_in_flight = _decremented(self.sync_in_flight, "sync jobs in flight")

    def task_returned(self, kind: SlotKind) -> None:
        """Its task returned: the slot takes the next job while the outcome is written."""
        self.ended(kind)
        self.settling += 1

    def settled(self) -> None:
        """A returned job's outcome is written (or given up): it no longer counts at all."""
        self.settling = _decremented(self.settling, "settling jobs")

    def pool_changed(self, target: int, failing: bool) -> None:
        """The executor pool was resized, or stopped (or resumed) booting executors."""
        self.pool_target = target
        self.pool_failing = failing


def _decremented(value: int, what: str) -> int:
    if value <= 0:
        raise ValueError(f"capacity bookkeeping error: no {what} left to release")
    return value - 1
