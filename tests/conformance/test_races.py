"""Two operations racing on separate instances (own connections): the outcome must be one of
the serial orders, never a mix (a lost update, a dependent stuck waiting, a queue past its limit).
"""

from __future__ import annotations

import asyncio

import pytest

from conveyor.backend import Backend
from conveyor.backend.protocol import (
    CancelRequest,
    Capability,
    ClaimRequest,
    CompleteRequest,
    EnqueueRequest,
    FailRequest,
    JobFilter,
    RedriveRequest,
)
from conveyor.errors import InvalidTransition, QueueFull
from conveyor.reaper import reap_expired
from conveyor.types import Job, JobState
from tests.conformance.conftest import OpenBackend, fetch, req, requires

ROUNDS = 25


async def claimed_jobs(backend: Backend, n: int, queue: str = "default", lease: float = 30.0) -> list[Job]:
    await backend.enqueue_many([req(queue=queue, args={"i": i}) for i in range(n)])
    jobs = await backend.claim(ClaimRequest(worker_id="w", queues=(queue,), limit=n, lease_seconds=lease))
    assert len(jobs) == n
    return jobs


async def test_max_depth_holds_under_concurrent_submits(backend: Backend, open_backend: OpenBackend) -> None:
    instances = [backend, *await asyncio.gather(*(open_backend() for _ in range(11)))]
    outcomes = await asyncio.gather(
        *(b.enqueue(req(queue="q", max_depth=5, args={"i": i})) for i, b in enumerate(instances)),
        return_exceptions=True,
    )
    stored = [o for o in outcomes if not isinstance(o, BaseException)]
    refused = [o for o in outcomes if isinstance(o, QueueFull)]
    assert len(stored) == 5 and len(refused) == 7, outcomes
    assert len((await backend.list_jobs(JobFilter(queue="q"))).jobs) == 5


async def test_reap_racing_complete(backend: Backend, open_backend: OpenBackend) -> None:
    """The holder completes while a reaper (whose clock is past the lease) reaps: per job exactly
    one wins, and a refused complete means the job really was taken back."""
    holder = await open_backend()
    jobs = await claimed_jobs(backend, 40, lease=10)
    backend.clock_offset = 11

    async def complete_all() -> dict[str, bool]:
        out = {}
        for job in jobs:
            out[job.id] = await holder.complete(CompleteRequest(job.id, job.lease_token or "", "done"))
        return out

    completed, reaped = await asyncio.gather(complete_all(), reap_expired(backend))
    reaped_set = set(reaped)
    for job in jobs:
        stored = await backend.get(job.id)
        assert stored is not None
        if completed[job.id]:
            assert job.id not in reaped_set and stored.state is JobState.SUCCEEDED
        else:
            assert job.id in reaped_set and stored.state is JobState.QUEUED
    assert len(reaped_set) == len(reaped)


async def test_cancel_racing_complete(backend: Backend, open_backend: OpenBackend) -> None:
    holder = await open_backend()
    jobs = await claimed_jobs(backend, ROUNDS)

    async def cancel(job: Job) -> bool:
        try:
            await backend.cancel(CancelRequest(job.id))
        except InvalidTransition:
            return False
        return True

    for job in jobs:
        done, canceled = await asyncio.gather(
            holder.complete(CompleteRequest(job.id, job.lease_token or "", 1)), cancel(job)
        )
        assert done != canceled, "exactly one of complete and cancel may win"
        stored = await backend.get(job.id)
        assert stored is not None
        assert stored.state is (JobState.SUCCEEDED if done else JobState.CANCELED)


async def test_concurrent_redrives_move_each_job_once(backend: Backend, open_backend: OpenBackend) -> None:
    others = await asyncio.gather(*(open_backend() for _ in range(3)))
    for job in await claimed_jobs(backend, 20):
        await backend.fail(FailRequest(job.id, job.lease_token or "", {"type": "X"}, JobState.FAILED))
    counts = await asyncio.gather(*(b.redrive(RedriveRequest(queue="default")) for b in [backend, *others]))
    assert sum(counts) == 20
    assert (await backend.queue_stats())[0].counts["queued"] == 20


async def test_last_two_dependencies_finishing_together_release_the_dependent(
    backend: Backend, open_backend: OpenBackend
) -> None:
    requires(backend, Capability.DEPENDENCIES)
    other = await open_backend()
    parents = await claimed_jobs(backend, 2 * ROUNDS, queue="parents")
    children = []
    for i in range(ROUNDS):
        a, b = parents[2 * i], parents[2 * i + 1]
        children.append((await backend.enqueue(req(depends_on=(a.id, b.id)))).job)
    for i in range(ROUNDS):
        a, b = parents[2 * i], parents[2 * i + 1]
        assert all(
            await asyncio.gather(
                backend.complete(CompleteRequest(a.id, a.lease_token or "")),
                other.complete(CompleteRequest(b.id, b.lease_token or "")),
            )
        )
    states = [(await fetch(backend, c.id)).state for c in children]
    assert states == [JobState.QUEUED] * ROUNDS


@pytest.mark.parametrize("outcome", ["complete", "cancel"])
async def test_dependent_submitted_while_its_parent_finishes(
    backend: Backend, open_backend: OpenBackend, outcome: str
) -> None:
    """Submitting a child while its parent completes (or is canceled) must never leave the child
    waiting on a parent that has already finished."""
    requires(backend, Capability.DEPENDENCIES)
    submitter = await open_backend()
    parents = await claimed_jobs(backend, ROUNDS, queue="parents")
    children = []
    for parent in parents:
        if outcome == "complete":
            finish = backend.complete(CompleteRequest(parent.id, parent.lease_token or ""))
        else:
            finish = backend.cancel(CancelRequest(parent.id))
        _, child = await asyncio.gather(
            finish, submitter.enqueue(EnqueueRequest(task="child", args={}, depends_on=(parent.id,)))
        )
        children.append(child.job)
    states = [(await fetch(backend, c.id)).state for c in children]
    if outcome == "cancel":
        assert states == [JobState.CANCELED] * ROUNDS
        return
    assert JobState.WAITING not in states
    # Released, and claimable now (a child released in the same instant as its own submit may
    # show as scheduled for that instant: its run_at is its submit time).
    claimed = await backend.claim(ClaimRequest(worker_id="w", queues=("default",), limit=ROUNDS + 1))
    assert {j.id for j in claimed} == {c.id for c in children}
