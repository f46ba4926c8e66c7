"""The node's capacity rules, without processes or an engine (worker/capacity.py).

Also the race that guards every slot: a job stopped while it waits never takes one.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest

from conveyor.worker.aio import acquire_unless_stopped
from conveyor.worker.capacity import SYNC_PREFETCH_PER_EXECUTOR, Capacity, SlotKind

SYNC, ASYNC = SlotKind.SYNC, SlotKind.ASYNC


@dataclass
class FakeTask:
    is_async: bool


def mixed(target: int = 2, async_concurrency: int = 10) -> Capacity:
    return Capacity(target, async_concurrency, has_sync=True, has_async=True)


def start(cap: Capacity, kind: SlotKind, n: int) -> None:
    for _ in range(n):
        cap.started(kind)


# -- which kinds an app has -------------------------------------------------------------------


def test_kinds_come_from_the_app_tasks() -> None:
    sync_only = Capacity.for_tasks([FakeTask(False)], 2, 10)
    async_only = Capacity.for_tasks([FakeTask(True), FakeTask(True)], 2, 10)
    both = Capacity.for_tasks([FakeTask(True), FakeTask(False)], 2, 10)
    assert (sync_only.has_sync, sync_only.has_async) == (True, False)
    assert (async_only.has_sync, async_only.has_async) == (False, True)
    assert (both.has_sync, both.has_async) == (True, True)


def test_an_app_without_tasks_counts_as_sync() -> None:
    cap = Capacity.for_tasks([], 3, 10)
    assert (cap.has_sync, cap.has_async) == (True, False)
    assert cap.to_claim() == 3


# -- sync only ----------------------------------------------------------------------------------


def test_sync_only_claims_one_job_per_free_executor() -> None:
    cap = Capacity(4, 10, has_sync=True, has_async=False)
    assert cap.to_claim() == 4
    start(cap, SYNC, 3)
    assert cap.to_claim() == 1
    start(cap, SYNC, 1)
    assert cap.to_claim() == 0
    cap.ended(SYNC)
    assert cap.to_claim() == 1


def test_sync_only_ignores_async_concurrency() -> None:
    cap = Capacity(2, 100, has_sync=True, has_async=False)
    assert cap.to_claim() == 2
    assert cap.settle_allowance() == 2


def test_a_resized_pool_changes_what_is_claimed() -> None:
    cap = Capacity(2, 10, has_sync=True, has_async=False)
    start(cap, SYNC, 2)
    cap.pool_changed(target=5, failing=False)
    assert cap.to_claim() == 3
    cap.pool_changed(target=1, failing=False)  # shrunk below what runs: claim nothing, never negative
    assert cap.to_claim() == 0


# -- async only ---------------------------------------------------------------------------------


def test_async_only_claims_free_async_slots_and_ignores_the_pool() -> None:
    cap = Capacity(2, 10, has_sync=False, has_async=True)
    assert cap.to_claim() == 10
    start(cap, ASYNC, 7)
    assert cap.to_claim() == 3
    assert cap.sync_in_flight == 0


def test_async_only_keeps_claiming_while_the_pool_fails() -> None:
    cap = Capacity(2, 10, has_sync=False, has_async=True)
    cap.pool_changed(target=2, failing=True)
    assert cap.to_claim() == 10


# -- mixed --------------------------------------------------------------------------------------


def test_mixed_claims_free_executors_plus_free_async_slots_capped_by_the_sync_ceiling() -> None:
    cap = mixed(target=2, async_concurrency=10)
    assert SYNC_PREFETCH_PER_EXECUTOR == 1
    assert cap.sync_ceiling == 4
    # 2 free executors + 10 free async slots, but every claimed job might be sync: at most 4.
    assert cap.to_claim() == 4


def test_mixed_node_with_ceiling_sync_jobs_claims_nothing_even_with_async_slots_free() -> None:
    """The known limit: a claim cannot ask for async jobs only (see Capacity.sync_ceiling)."""
    cap = mixed(target=2, async_concurrency=10)
    start(cap, SYNC, 4)  # 2 running, 2 prefetched: one per executor
    assert cap.to_claim() == 0
    cap.ended(SYNC)
    assert cap.to_claim() == 1


def test_mixed_sync_jobs_never_exceed_the_ceiling() -> None:
    """Whatever mix each claim brings, sync jobs in flight stay within one prefetch per executor."""
    cap = mixed(target=3, async_concurrency=5)
    for claimed_sync in (True, False, True, True, False, True, True, True, True):
        n = cap.to_claim()
        if n == 0:
            break
        cap.started(SYNC if claimed_sync else ASYNC)
        assert cap.sync_in_flight <= cap.sync_ceiling
        assert cap.running <= cap.pool_target + cap.async_concurrency


def test_mixed_async_jobs_fill_slots_up_to_executors_plus_async_concurrency() -> None:
    cap = mixed(target=2, async_concurrency=3)
    start(cap, ASYNC, 3)
    assert cap.to_claim() == 2  # the next jobs might be sync: the two executors are free
    start(cap, ASYNC, 2)  # they were async after all: they wait for an async slot
    assert cap.to_claim() == 0


# -- failing pool -------------------------------------------------------------------------------


def test_a_failing_pool_stops_claims_for_sync_and_mixed_apps() -> None:
    for cap in (Capacity(2, 10, has_sync=True, has_async=False), mixed()):
        cap.pool_changed(target=2, failing=True)
        assert cap.to_claim() == 0
        cap.pool_changed(target=2, failing=False)
        assert cap.to_claim() > 0


def test_a_failing_pool_still_allows_one_settling_job() -> None:
    cap = Capacity(2, 10, has_sync=True, has_async=False, pool_failing=True)
    assert cap.settle_allowance() == 1


# -- settling overlap ---------------------------------------------------------------------------


def test_a_returned_task_frees_its_slot_while_its_outcome_is_written() -> None:
    cap = Capacity(2, 10, has_sync=True, has_async=False)
    start(cap, SYNC, 2)
    assert cap.to_claim() == 0
    cap.task_returned(SYNC)
    assert (cap.sync_in_flight, cap.settling) == (1, 1)
    assert cap.to_claim() == 1
    cap.settled()
    assert (cap.sync_in_flight, cap.settling) == (1, 0)
    assert cap.to_claim() == 1


def test_settling_beyond_the_allowance_holds_claims_back() -> None:
    """A slow engine cannot make a node hoard leases: at most one full set of slots settles."""
    cap = Capacity(2, 10, has_sync=True, has_async=False)
    assert cap.settle_allowance() == 2
    start(cap, SYNC, 2)
    cap.task_returned(SYNC)
    cap.task_returned(SYNC)
    assert cap.to_claim() == 2  # two settling: within the allowance
    start(cap, SYNC, 2)
    cap.task_returned(SYNC)
    assert cap.settling == 3
    assert cap.to_claim() == 0  # one free executor, but one job settling too many
    cap.settled()
    assert cap.to_claim() == 1


def test_the_settle_allowance_is_one_set_of_slots() -> None:
    assert Capacity(4, 10, has_sync=True, has_async=False).settle_allowance() == 4
    assert Capacity(4, 10, has_sync=False, has_async=True).settle_allowance() == 10
    assert mixed(target=4, async_concurrency=10).settle_allowance() == 8


def test_the_batch_goal_is_half_the_settle_allowance() -> None:
    assert Capacity(4, 10, has_sync=True, has_async=False).batch_goal() == 2
    assert Capacity(1, 10, has_sync=True, has_async=False).batch_goal() == 1
    assert Capacity(2, 10, has_sync=False, has_async=True).batch_goal() == 5


def test_running_counts_jobs_whose_task_has_not_returned() -> None:
    cap = mixed()
    assert cap.running == 0
    start(cap, SYNC, 1)
    start(cap, ASYNC, 2)
    assert cap.running == 3
    cap.task_returned(ASYNC)
    assert cap.running == 2  # settling jobs do not keep a node from claiming at once


# -- bookkeeping errors -------------------------------------------------------------------------


def test_releasing_more_than_was_taken_is_an_error() -> None:
    cap = mixed()
    with pytest.raises(ValueError, match="sync jobs in flight"):
        cap.ended(SYNC)
    with pytest.raises(ValueError, match="async jobs in flight"):
        cap.task_returned(ASYNC)
    with pytest.raises(ValueError, match="settling"):
        cap.settled()


# -- taking a slot unless the job is stopped first (worker/aio.py) ----------------------------------


def test_a_slot_is_taken_when_no_stop_comes() -> None:
    async def scenario() -> tuple[object, bool]:
        slots = asyncio.Semaphore(1)
        got = await acquire_unless_stopped(slots.acquire(), asyncio.Event(), lambda _: slots.release())
        return got, slots.locked()

    assert asyncio.run(scenario()) == (True, True)


def test_a_stop_abandons_the_wait_and_leaks_no_slot() -> None:
    async def scenario() -> tuple[object, bool]:
        slots = asyncio.Semaphore(1)
        await slots.acquire()  # busy: the job must wait
        stopped = asyncio.Event()
        waiting = asyncio.ensure_future(acquire_unless_stopped(slots.acquire(), stopped, lambda _: slots.release()))
        await asyncio.sleep(0)
        stopped.set()
        got = await waiting
        slots.release()  # the busy job ends: the slot must be free for the next one
        return got, not slots.locked()

    assert asyncio.run(scenario()) == (None, True)


def test_a_slot_obtained_after_the_stop_is_given_back() -> None:
    async def scenario() -> tuple[object, list[int]]:
        given_back: list[int] = []
        stopped = asyncio.Event()

        async def acquire() -> int:
            stopped.set()  # the stop arrives in the same loop pass as the slot
            return 7

        got = await acquire_unless_stopped(acquire(), stopped, given_back.append)
        return got, given_back

    assert asyncio.run(scenario()) == (None, [7])
