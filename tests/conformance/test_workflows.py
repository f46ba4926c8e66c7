"""Workflows in the engines: workflow fields, dependency policies, quorum, cascades, atomicity.

The rule under test is ``states.dependent_outcome`` (docs/decisions/0004-dependency-policies.md):
a waiting dependent is released once enough of its dependencies are done, canceled once its
quorum can no longer be reached, and otherwise keeps waiting; each policy says which
dependency states count as done and which as lost.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

from conveyor.backend import Backend
from conveyor.backend.protocol import (
    CancelRequest,
    Capability,
    ClaimRequest,
    CompleteRequest,
    EventsRequest,
    FailRequest,
    JobFilter,
    OutboxRequest,
    RedriveRequest,
)
from conveyor.reaper import reap_expired
from conveyor.types import DependencyPolicy, Job, JobState, new_job_id
from tests.conformance.conftest import OpenBackend, claim_one, enqueue, fetch, req, requires, state_of

CANCEL, CONTINUE, WAIT = DependencyPolicy.CANCEL, DependencyPolicy.CONTINUE, DependencyPolicy.WAIT
ROUNDS = 25


async def finish(backend: Backend, job: Job) -> None:
    """Claim ``job`` (alone in its queue) and complete it."""
    claimed = await claim_one(backend, job.queue)
    assert claimed.id == job.id
    assert await backend.complete(CompleteRequest(job.id, claimed.lease_token or "", {"from": job.id}))


async def fail(backend: Backend, job: Job) -> None:
    """Claim ``job`` (alone in its queue) and dead-letter it."""
    claimed = await claim_one(backend, job.queue)
    assert claimed.id == job.id
    err = {"type": "Boom", "message": "broken"}
    assert await backend.fail(FailRequest(job.id, claimed.lease_token or "", err, JobState.FAILED)) is JobState.FAILED


def queue() -> str:
    """A queue of its own, so ``claim_one`` takes exactly the job meant."""
    return f"q{uuid.uuid4().hex[:8]}"


async def parent(backend: Backend, step: str | None = None, workflow: str | None = None) -> Job:
    return await enqueue(backend, queue=queue(), step=step, workflow_id=workflow)


# -- the fields and the workflow index ------------------------------------------------------


async def test_workflow_fields_are_stored_and_returned(backend: Backend) -> None:
    requires(backend, Capability.DEPENDENCIES)
    a = await parent(backend, step="fetch", workflow="wf-1")
    job = await enqueue(
        backend, workflow_id="wf-1", step="render", depends_on=(a.id,), on_dependency_failure=CONTINUE, quorum=1
    )
    for seen in (job, await fetch(backend, job.id)):
        assert (seen.workflow_id, seen.step, seen.on_dependency_failure, seen.quorum) == ("wf-1", "render", CONTINUE, 1)
    plain = await fetch(backend, (await enqueue(backend)).id)
    assert (plain.workflow_id, plain.step, plain.on_dependency_failure, plain.quorum) == (None, None, CANCEL, None)


async def test_list_jobs_filters_by_workflow_and_keeps_tenants_apart(backend: Backend) -> None:
    mine = [await enqueue(backend, workflow_id="wf-a", args={"i": i}) for i in range(3)]
    await enqueue(backend, workflow_id="wf-b")
    await enqueue(backend)
    await enqueue(backend, workflow_id="wf-a", tenant="acme")
    page = await backend.list_jobs(JobFilter(workflow="wf-a", tenant="default"))
    assert [j.id for j in page.jobs] == [j.id for j in reversed(mine)]
    first = await backend.list_jobs(JobFilter(workflow="wf-a", tenant="default", limit=2))
    rest = await backend.list_jobs(JobFilter(workflow="wf-a", tenant="default", cursor=first.next_cursor))
    assert [j.id for j in first.jobs + rest.jobs] == [j.id for j in reversed(mine)]
    assert len((await backend.list_jobs(JobFilter(workflow="wf-a"))).jobs) == 4  # admin: every tenant
    assert (await backend.list_jobs(JobFilter(workflow="nope"))).jobs == []


async def test_a_batch_may_depend_on_its_own_pre_assigned_ids(backend: Backend) -> None:
    requires(backend, Capability.DEPENDENCIES)
    ids = [new_job_id() for _ in range(3)]
    q = queue()
    results = await backend.enqueue_many(
        [
            req(queue=q, job_id=ids[0], workflow_id="wf", step="a"),
            req(queue=q, job_id=ids[1], workflow_id="wf", step="b", depends_on=(ids[0],)),
            req(queue=q, job_id=ids[2], workflow_id="wf", step="c", depends_on=(ids[1],)),
        ]
    )
    assert [r.job.state for r in results] == [JobState.QUEUED, JobState.WAITING, JobState.WAITING]
    for i in range(3):
        assert (await claim_one(backend, q)).id == ids[i]
        job = await fetch(backend, ids[i])
        assert await backend.complete(CompleteRequest(job.id, job.lease_token or "", i))
    assert [(await fetch(backend, i)).state for i in ids] == [JobState.SUCCEEDED] * 3


# -- quorum ---------------------------------------------------------------------------------


async def test_quorum_releases_once_enough_dependencies_succeeded(backend: Backend) -> None:
    requires(backend, Capability.DEPENDENCIES)
    parents = [await parent(backend) for _ in range(3)]
    fan_in = await enqueue(backend, depends_on=tuple(p.id for p in parents), quorum=2)
    await finish(backend, parents[0])
    assert await state_of(backend, fan_in.id) == "waiting"
    await finish(backend, parents[1])
    assert await state_of(backend, fan_in.id) == "queued"
    await fail(backend, parents[2])  # after the release: changes nothing
    assert await state_of(backend, fan_in.id) == "queued"


async def test_quorum_cancels_only_once_it_is_unreachable(backend: Backend) -> None:
    requires(backend, Capability.DEPENDENCIES)
    parents = [await parent(backend, step=f"p{i}") for i in range(3)]
    fan_in = await enqueue(backend, depends_on=tuple(p.id for p in parents), quorum=2)
    await fail(backend, parents[0])
    assert await state_of(backend, fan_in.id) == "waiting"  # two may still succeed
    await backend.cancel(CancelRequest(parents[1].id))
    job = await fetch(backend, fan_in.id)
    assert job.state is JobState.CANCELED
    assert job.error == {
        "type": "DependencyFailed",
        "message": f"dependency {parents[1].id} (p1) was canceled",
        "dependency": parents[1].id,
    }


async def test_continue_quorum_counts_every_ending(backend: Backend) -> None:
    requires(backend, Capability.DEPENDENCIES)
    parents = [await parent(backend) for _ in range(3)]
    fan_in = await enqueue(backend, depends_on=tuple(p.id for p in parents), quorum=2, on_dependency_failure=CONTINUE)
    await fail(backend, parents[0])
    assert await state_of(backend, fan_in.id) == "waiting"
    await backend.cancel(CancelRequest(parents[1].id))
    assert await state_of(backend, fan_in.id) == "queued"


# -- the policies -----------------------------------------------------------------------------


async def test_cancel_policy_fails_fast_and_cascades(backend: Backend) -> None:
    requires(backend, Capability.DEPENDENCIES)
    a = await parent(backend, step="fetch")
    other = await parent(backend)
    b = await enqueue(backend, depends_on=(a.id, other.id), step="render")
    c = await enqueue(backend, depends_on=(b.id,), step="notify")
    keep = await enqueue(backend, depends_on=(b.id,), on_dependency_failure=CONTINUE)
    await fail(backend, a)
    got_b, got_c = await fetch(backend, b.id), await fetch(backend, c.id)
    assert got_b.state is JobState.CANCELED and got_c.state is JobState.CANCELED
    assert got_b.error == {
        "type": "DependencyFailed",
        "message": f"dependency {a.id} (fetch) failed",
        "dependency": a.id,
    }
    assert got_c.error == {
        "type": "DependencyFailed",
        "message": f"dependency {b.id} (render) was canceled",
        "dependency": b.id,
    }
    assert got_b.finished_at is not None
    assert await state_of(backend, keep.id) == "queued"  # continue: a canceled dependency is done
    assert await state_of(backend, other.id) == "queued"  # dependencies are never touched
    events = await backend.events(EventsRequest(b.id))
    assert [(e.type, e.state) for e in events] == [("enqueued", JobState.WAITING), ("state", JobState.CANCELED)]
    assert events[-1].data["error"]["dependency"] == a.id


async def test_a_long_chain_cascades_to_its_end(backend: Backend) -> None:
    """The cascade is a worklist, not recursion: a chain longer than Python's recursion limit
    allows for nested calls is canceled to its last step, in the one transaction of the failure."""
    requires(backend, Capability.DEPENDENCIES)
    q = queue()
    ids = [new_job_id() for _ in range(600)]
    batch = [req(queue=q, job_id=ids[0])]
    batch += [req(queue=q, job_id=ids[i], depends_on=(ids[i - 1],)) for i in range(1, len(ids))]
    await backend.enqueue_many(batch)
    await fail(backend, await fetch(backend, ids[0]))
    last = await fetch(backend, ids[-1])
    assert last.state is JobState.CANCELED
    assert last.error is not None and last.error["dependency"] == ids[-2]
    page = await backend.list_jobs(JobFilter(queue=q, states=(JobState.CANCELED,), limit=1000))
    assert len(page.jobs) == len(ids) - 1


async def test_cascaded_cancels_reach_the_outbox(backend: Backend) -> None:
    requires(backend, Capability.DEPENDENCIES)
    a = await parent(backend)
    b = await enqueue(backend, depends_on=(a.id,))
    c = await enqueue(backend, depends_on=(b.id,))
    await backend.ack_outbox([e.seq for e in await backend.take_outbox(OutboxRequest(limit=100))])
    await fail(backend, a)
    entries = await backend.take_outbox(OutboxRequest(limit=100))
    assert sorted((e.job_id, e.state) for e in entries) == sorted(
        [(a.id, JobState.FAILED), (b.id, JobState.CANCELED), (c.id, JobState.CANCELED)]
    )


async def test_continue_policy_runs_after_a_failure(backend: Backend) -> None:
    requires(backend, Capability.DEPENDENCIES)
    a, b = await parent(backend), await parent(backend)
    child = await enqueue(backend, depends_on=(a.id, b.id), on_dependency_failure=CONTINUE)
    await fail(backend, a)
    assert await state_of(backend, child.id) == "waiting"  # b has not ended yet
    await finish(backend, b)
    assert await state_of(backend, child.id) == "queued"


async def test_wait_policy_waits_for_a_redrive_and_a_cancel_still_cancels(backend: Backend) -> None:
    requires(backend, Capability.DEPENDENCIES)
    a = await parent(backend)
    child = await enqueue(backend, depends_on=(a.id,), on_dependency_failure=WAIT)
    await fail(backend, a)
    assert await state_of(backend, child.id) == "waiting"
    assert await backend.redrive(RedriveRequest(job_ids=(a.id,))) == 1
    await fail(backend, a)  # fails again: still waiting
    assert await state_of(backend, child.id) == "waiting"
    assert await backend.redrive(RedriveRequest(job_ids=(a.id,))) == 1
    await finish(backend, a)
    assert await state_of(backend, child.id) == "queued"

    b = await parent(backend)
    other = await enqueue(backend, depends_on=(b.id,), on_dependency_failure=WAIT)
    await backend.cancel(CancelRequest(b.id))
    assert await state_of(backend, other.id) == "canceled"


async def test_an_expired_last_attempt_settles_dependents(backend: Backend) -> None:
    requires(backend, Capability.DEPENDENCIES)
    q = queue()
    a = await enqueue(backend, queue=q, max_attempts=1)
    child = await enqueue(backend, depends_on=(a.id,))
    await claim_one(backend, q, lease=5)
    backend.clock_offset = 10
    assert await reap_expired(backend) == [a.id]
    job = await fetch(backend, child.id)
    assert job.state is JobState.CANCELED
    assert job.error is not None and job.error["dependency"] == a.id


async def test_a_retry_is_not_an_ending(backend: Backend) -> None:
    requires(backend, Capability.DEPENDENCIES)
    a = await parent(backend)
    child = await enqueue(backend, depends_on=(a.id,))
    claimed = await claim_one(backend, a.queue)
    err = {"type": "Flaky"}
    assert await backend.fail(FailRequest(a.id, claimed.lease_token or "", err, JobState.SCHEDULED, 0.0)) is not None
    assert await state_of(backend, child.id) == "waiting"


@pytest.mark.parametrize(
    ("policy", "failed_dep", "canceled_dep"),
    [(CANCEL, "canceled", "canceled"), (CONTINUE, "queued", "queued"), (WAIT, "waiting", "canceled")],
)
async def test_enqueue_onto_ended_dependencies_applies_the_same_rule(
    backend: Backend, policy: DependencyPolicy, failed_dep: str, canceled_dep: str
) -> None:
    requires(backend, Capability.DEPENDENCIES)
    done, dead, gone = await parent(backend), await parent(backend, step="load"), await parent(backend)
    await finish(backend, done)
    await fail(backend, dead)
    await backend.cancel(CancelRequest(gone.id))
    on_failed = await enqueue(backend, depends_on=(done.id, dead.id), on_dependency_failure=policy)
    on_canceled = await enqueue(backend, depends_on=(done.id, gone.id), on_dependency_failure=policy)
    assert (on_failed.state.value, on_canceled.state.value) == (failed_dep, canceled_dep)
    if failed_dep == "canceled":
        assert on_failed.error == {
            "type": "DependencyFailed",
            "message": f"dependency {dead.id} (load) failed",
            "dependency": dead.id,
        }
    if policy is WAIT:  # the failed dependency may still be redriven and succeed
        assert await backend.redrive(RedriveRequest(job_ids=(dead.id,))) == 1
        await finish(backend, dead)
        assert await state_of(backend, on_failed.id) == "queued"


async def test_a_batch_onto_a_failing_step_is_settled_inside_the_batch(backend: Backend) -> None:
    requires(backend, Capability.DEPENDENCIES)
    dead = await parent(backend)
    await fail(backend, dead)
    first, second = new_job_id(), new_job_id()
    results = await backend.enqueue_many(
        [
            req(job_id=first, depends_on=(dead.id,)),
            req(job_id=second, depends_on=(first,), on_dependency_failure=CONTINUE),
        ]
    )
    assert [r.job.state for r in results] == [JobState.CANCELED, JobState.QUEUED]


# -- atomicity --------------------------------------------------------------------------------


async def claimed(backend: Backend, n: int, q: str) -> list[Job]:
    await backend.enqueue_many([req(queue=q, args={"i": i}) for i in range(n)])
    jobs = await backend.claim(ClaimRequest(worker_id="w", queues=(q,), limit=n, lease_seconds=60))
    assert len(jobs) == n
    return jobs


async def test_two_parents_completing_at_once_release_the_fan_in_exactly_once(
    backend: Backend, open_backend: OpenBackend
) -> None:
    requires(backend, Capability.DEPENDENCIES)
    other = await open_backend()
    parents = await claimed(backend, 2 * ROUNDS, "parents")
    fan_ins = [
        (await backend.enqueue(req(queue="fan", depends_on=(parents[2 * i].id, parents[2 * i + 1].id)))).job
        for i in range(ROUNDS)
    ]
    for i in range(ROUNDS):
        a, b = parents[2 * i], parents[2 * i + 1]
        assert all(
            await asyncio.gather(
                backend.complete(CompleteRequest(a.id, a.lease_token or "")),
                other.complete(CompleteRequest(b.id, b.lease_token or "")),
            )
        )
    for job in fan_ins:
        events = await backend.events(EventsRequest(job.id))
        assert [e.state for e in events] == [JobState.WAITING, JobState.QUEUED], job.id
    claimed_fan = await backend.claim(ClaimRequest(worker_id="w", queues=("fan",), limit=ROUNDS + 5))
    assert sorted(j.id for j in claimed_fan) == sorted(j.id for j in fan_ins)


async def test_two_parents_failing_at_once_cancel_the_dependent_exactly_once(
    backend: Backend, open_backend: OpenBackend
) -> None:
    requires(backend, Capability.DEPENDENCIES)
    other = await open_backend()
    parents = await claimed(backend, 2 * ROUNDS, "parents")
    children = [
        (await backend.enqueue(req(depends_on=(parents[2 * i].id, parents[2 * i + 1].id)))).job for i in range(ROUNDS)
    ]
    err = {"type": "Boom"}
    for i in range(ROUNDS):
        a, b = parents[2 * i], parents[2 * i + 1]
        await asyncio.gather(
            backend.fail(FailRequest(a.id, a.lease_token or "", err, JobState.FAILED)),
            other.fail(FailRequest(b.id, b.lease_token or "", err, JobState.FAILED)),
        )
    for job in children:
        events = await backend.events(EventsRequest(job.id))
        assert [e.state for e in events] == [JobState.WAITING, JobState.CANCELED], job.id
