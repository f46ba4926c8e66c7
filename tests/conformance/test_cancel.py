"""Cancel, redrive and job dependencies (with tenant scoping)."""

from __future__ import annotations

import pytest

from conveyor.backend import Backend
from conveyor.backend.protocol import (
    CancelRequest,
    Capability,
    CompleteRequest,
    EventsRequest,
    FailRequest,
    HeartbeatRequest,
    Lease,
    ProgressRequest,
    RedriveRequest,
)
from conveyor.errors import InvalidTransition, JobNotFound
from conveyor.reaper import reap_expired
from conveyor.types import DependencyPolicy, Job, JobState
from tests.conformance.conftest import claim, claim_one, enqueue, fetch, requires, state_of

UNKNOWN = "0190a5e0-0000-7000-8000-00000000ffff"


async def dead_letter(backend: Backend, **kw: object) -> Job:
    """A job in the failed state (claimed once, failed without retry)."""
    job = await enqueue(backend, **kw)  # type: ignore[arg-type]
    queue = str(kw.get("queue", "default"))
    claimed = await claim_one(backend, queue)
    assert claimed.id == job.id
    err = {"type": "Poison", "message": "bad input"}
    assert await backend.fail(FailRequest(job.id, claimed.lease_token or "", err, JobState.FAILED)) is JobState.FAILED
    return job


# -- cancel -------------------------------------------------------------------------------


async def test_cancel_queued_and_scheduled(backend: Backend) -> None:
    queued = await enqueue(backend)
    scheduled = await enqueue(backend, delay=100)
    for job in (queued, scheduled):
        canceled = await backend.cancel(CancelRequest(job.id, reason="user changed their mind"))
        assert canceled.id == job.id
        assert canceled.state is JobState.CANCELED
        assert canceled.finished_at is not None
        assert (await fetch(backend, job.id)).state is JobState.CANCELED
    backend.clock_offset = 200
    assert await claim(backend, limit=5) == []
    assert await backend.promote_scheduled() == 0


async def test_cancel_running_fences_the_worker(backend: Backend) -> None:
    await enqueue(backend)
    job = await claim_one(backend)
    token = job.lease_token or ""
    assert (await backend.cancel(CancelRequest(job.id))).state is JobState.CANCELED
    assert await backend.heartbeat(HeartbeatRequest((Lease(job.id, token),))) == {job.id: "canceled"}
    assert await backend.complete(CompleteRequest(job.id, token, "late")) is False
    assert await backend.fail(FailRequest(job.id, token, {"type": "X"}, JobState.SCHEDULED, 1)) is None
    assert await backend.progress(ProgressRequest(job.id, token, 0.5)) is False
    stored = await backend.get(job.id)
    assert stored is not None and stored.state is JobState.CANCELED and stored.result is None
    # A canceled job is not reaped back to life when its old lease runs out.
    backend.clock_offset = 1000
    assert await reap_expired(backend) == []
    assert await state_of(backend, job.id) == "canceled"


@pytest.mark.parametrize("outcome", ["succeeded", "failed", "canceled"])
async def test_cancel_a_terminal_job_is_invalid(backend: Backend, outcome: str) -> None:
    job = await enqueue(backend)
    if outcome == "canceled":
        await backend.cancel(CancelRequest(job.id))
    else:
        claimed = await claim_one(backend)
        if outcome == "succeeded":
            await backend.complete(CompleteRequest(job.id, claimed.lease_token or "", 1))
        else:
            await backend.fail(FailRequest(job.id, claimed.lease_token or "", {"type": "X"}, JobState.FAILED))
    with pytest.raises(InvalidTransition):
        await backend.cancel(CancelRequest(job.id))
    assert await state_of(backend, job.id) == outcome


async def test_cancel_unknown_or_foreign_job(backend: Backend) -> None:
    with pytest.raises(JobNotFound):
        await backend.cancel(CancelRequest(UNKNOWN))
    job = await enqueue(backend, tenant="acme")
    with pytest.raises(JobNotFound):
        await backend.cancel(CancelRequest(job.id, tenant="globex"))
    assert await state_of(backend, job.id) == "queued"
    assert (await backend.cancel(CancelRequest(job.id, tenant="acme"))).state is JobState.CANCELED


# -- dependencies -------------------------------------------------------------------------


async def finish(backend: Backend, queue: str = "default") -> Job:
    job = await claim_one(backend, queue)
    assert await backend.complete(CompleteRequest(job.id, job.lease_token or "", None))
    return job


async def test_dependent_waits_for_every_dependency(backend: Backend) -> None:
    requires(backend, Capability.DEPENDENCIES)
    a = await enqueue(backend, queue="deps")
    b = await enqueue(backend, queue="deps")
    child = await enqueue(backend, queue="work", depends_on=(a.id, b.id))
    assert child.state is JobState.WAITING
    assert child.depends_on == [a.id, b.id]
    assert await claim(backend, "work") == []
    assert await backend.queue_position(child.id) is None
    await finish(backend, "deps")
    assert await state_of(backend, child.id) == "waiting"
    assert await claim(backend, "work") == []
    await finish(backend, "deps")
    assert await state_of(backend, child.id) == "queued"
    assert (await claim_one(backend, "work")).id == child.id


async def test_dependency_already_succeeded_or_canceled_at_submit(backend: Backend) -> None:
    requires(backend, Capability.DEPENDENCIES)
    done = await enqueue(backend, queue="deps")
    await finish(backend, "deps")
    gone = await enqueue(backend, queue="deps")
    await backend.cancel(CancelRequest(gone.id))
    assert (await enqueue(backend, depends_on=(done.id,))).state is JobState.QUEUED
    assert (await enqueue(backend, depends_on=(done.id,), delay=100)).state is JobState.SCHEDULED
    assert (await enqueue(backend, depends_on=(done.id, gone.id))).state is JobState.CANCELED


async def test_released_dependent_honours_its_delay(backend: Backend) -> None:
    requires(backend, Capability.DEPENDENCIES)
    parent = await enqueue(backend, queue="deps")
    child = await enqueue(backend, depends_on=(parent.id,), delay=100)
    assert child.state is JobState.WAITING
    await finish(backend, "deps")
    assert await state_of(backend, child.id) == "scheduled"
    backend.clock_offset = 101
    assert (await claim_one(backend)).id == child.id


async def test_failed_dependency_keeps_a_wait_dependent_waiting_until_redriven(backend: Backend) -> None:
    requires(backend, Capability.DEPENDENCIES)
    parent = await dead_letter(backend, queue="deps")
    child = await enqueue(backend, depends_on=(parent.id,), on_dependency_failure=DependencyPolicy.WAIT)
    assert child.state is JobState.WAITING
    assert await backend.redrive(RedriveRequest(job_ids=(parent.id,))) == 1
    assert await state_of(backend, child.id) == "waiting"
    await finish(backend, "deps")
    assert await state_of(backend, child.id) == "queued"


async def test_cancel_cascades_to_waiting_dependents(backend: Backend) -> None:
    requires(backend, Capability.DEPENDENCIES)
    root = await enqueue(backend, queue="deps")
    other = await enqueue(backend, queue="deps")
    child = await enqueue(backend, depends_on=(root.id, other.id))
    grandchild = await enqueue(backend, depends_on=(child.id,))
    independent = await enqueue(backend, depends_on=(other.id,))
    await backend.cancel(CancelRequest(root.id))
    assert await state_of(backend, child.id) == "canceled"
    assert await state_of(backend, grandchild.id) == "canceled"
    assert await state_of(backend, other.id) == "queued"
    assert await state_of(backend, independent.id) == "waiting"
    await finish(backend, "deps")
    assert await state_of(backend, independent.id) == "queued"
    assert await state_of(backend, child.id) == "canceled"


async def test_canceling_a_dependent_leaves_its_dependency(backend: Backend) -> None:
    requires(backend, Capability.DEPENDENCIES)
    parent = await enqueue(backend, queue="deps")
    child = await enqueue(backend, depends_on=(parent.id,))
    await backend.cancel(CancelRequest(child.id))
    assert await state_of(backend, parent.id) == "queued"
    await finish(backend, "deps")
    assert await state_of(backend, child.id) == "canceled"  # not resurrected by its parent's success


async def test_duplicate_dependencies_count_once(backend: Backend) -> None:
    requires(backend, Capability.DEPENDENCIES)
    parent = await enqueue(backend, queue="deps")
    child = await enqueue(backend, depends_on=(parent.id, parent.id))
    assert child.state is JobState.WAITING
    await finish(backend, "deps")
    assert await state_of(backend, child.id) == "queued"


# -- redrive ------------------------------------------------------------------------------


async def test_redrive_moves_dead_letters_back_with_attempts_reset(backend: Backend) -> None:
    job = await dead_letter(backend, max_attempts=1)
    assert await backend.redrive(RedriveRequest(job_ids=(job.id,))) == 1
    stored = await backend.get(job.id)
    assert stored is not None
    assert (stored.state, stored.attempts) == (JobState.QUEUED, 0)
    assert stored.finished_at is None
    again = await claim_one(backend)
    assert again.id == job.id and again.attempts == 1  # max_attempts=1: a full new budget
    assert await backend.redrive(RedriveRequest(job_ids=(job.id,))) == 0  # running: not failed


async def test_redrive_keeps_the_error_in_history(backend: Backend) -> None:
    requires(backend, Capability.EVENTS)
    job = await dead_letter(backend)
    await backend.redrive(RedriveRequest(job_ids=(job.id,)))
    history = await backend.events(EventsRequest(job.id))
    assert [e.state for e in history][-2:] == [JobState.FAILED, JobState.QUEUED]
    assert history[-2].data.get("error", {}).get("type") == "Poison"


async def test_redrive_ignores_jobs_that_are_not_failed(backend: Backend) -> None:
    queued = await enqueue(backend)
    failed = await dead_letter(backend, queue="dlq")
    n = await backend.redrive(RedriveRequest(job_ids=(queued.id, failed.id, UNKNOWN)))
    assert n == 1
    assert await state_of(backend, queued.id) == "queued"


async def test_redrive_by_filter(backend: Backend) -> None:
    a1 = await dead_letter(backend, queue="a", task="t1")
    a2 = await dead_letter(backend, queue="a", task="t2")
    b1 = await dead_letter(backend, queue="b", task="t1")
    assert await backend.redrive(RedriveRequest(queue="a", task="t1")) == 1
    assert [await state_of(backend, j.id) for j in (a1, a2, b1)] == ["queued", "failed", "failed"]
    assert await backend.redrive(RedriveRequest(task="t1")) == 1
    assert await state_of(backend, b1.id) == "queued"
    assert await backend.redrive(RedriveRequest()) == 1  # everything left
    assert await state_of(backend, a2.id) == "queued"
    assert await backend.redrive(RedriveRequest()) == 0


async def test_redrive_is_tenant_scoped(backend: Backend) -> None:
    mine = await dead_letter(backend, tenant="acme")
    theirs = await dead_letter(backend, tenant="globex")
    assert await backend.redrive(RedriveRequest(job_ids=(theirs.id,), tenant="acme")) == 0
    assert await backend.redrive(RedriveRequest(tenant="acme")) == 1
    assert await state_of(backend, mine.id) == "queued"
    assert await state_of(backend, theirs.id) == "failed"
    assert await backend.redrive(RedriveRequest(job_ids=(theirs.id,), tenant="globex")) == 1
