"""``complete_many``: a worker acknowledges a batch of finished jobs in one engine call.

It must answer, position by position, what ``complete`` would have answered for each request
in order: every job is fenced on its own token, a refused one never spoils the others, and a
completed one records its result and event and releases its dependents exactly as ``complete``.
"""

from __future__ import annotations

from conveyor.backend import Backend
from conveyor.backend.protocol import CancelRequest, Capability, CompleteRequest, EventsRequest
from conveyor.reaper import reap_expired
from conveyor.types import JobState
from tests.conformance.conftest import claim, claim_one, enqueue, fetch, requires, state_of


def ack(job_id: str, token: str | None, result: object = None) -> CompleteRequest:
    return CompleteRequest(job_id, token or "", result)


async def test_empty_batch_does_nothing(backend: Backend) -> None:
    job = await enqueue(backend)
    running = await claim_one(backend)
    assert await backend.complete_many([]) == []
    assert await state_of(backend, job.id) == "running"
    assert (await fetch(backend, job.id)).lease_token == running.lease_token


async def test_mixed_tokens_are_fenced_one_by_one(backend: Backend) -> None:
    for i in range(5):
        await enqueue(backend, args={"i": i})
    a, b, c, d, e = await claim(backend, limit=5)
    await backend.cancel(CancelRequest(d.id))  # canceled while running: its ack must be refused
    answers = await backend.complete_many(
        [
            ack(a.id, a.lease_token, {"n": "a"}),
            ack(b.id, "not-the-token", {"n": "b"}),
            ack(c.id, c.lease_token, [1, 2]),
            ack(d.id, d.lease_token, {"n": "d"}),
            ack("no-such-job", "t"),
            ack(e.id, e.lease_token, None),
        ]
    )
    assert answers == [True, False, True, False, False, True]

    done_a, done_c, done_e = await fetch(backend, a.id), await fetch(backend, c.id), await fetch(backend, e.id)
    assert (done_a.state, done_a.result) == (JobState.SUCCEEDED, {"n": "a"})
    assert (done_c.state, done_c.result) == (JobState.SUCCEEDED, [1, 2])
    assert (done_e.state, done_e.result) == (JobState.SUCCEEDED, None)
    assert done_a.finished_at is not None and done_a.lease_expires_at is None
    still = await fetch(backend, b.id)
    assert (still.state, still.lease_token, still.result) == (JobState.RUNNING, b.lease_token, None)
    assert await state_of(backend, d.id) == "canceled"
    # The refused job can still be completed with its own token afterwards.
    assert await backend.complete_many([ack(b.id, b.lease_token, "late")]) == [True]
    assert (await fetch(backend, b.id)).result == "late"


async def test_stale_token_after_reclaim_is_refused_without_touching_the_new_holder(backend: Backend) -> None:
    first = await enqueue(backend)
    other = await enqueue(backend)
    old = await claim_one(backend, lease=30, worker="A")
    assert old.id == first.id
    backend.clock_offset = 31.0
    assert await reap_expired(backend) == [first.id]
    new = await claim_one(backend, lease=30, worker="B")
    assert new.id == first.id and new.lease_token != old.lease_token
    sibling = await claim_one(backend, lease=30, worker="A")
    assert sibling.id == other.id

    answers = await backend.complete_many([ack(old.id, old.lease_token, "A"), ack(sibling.id, sibling.lease_token)])
    assert answers == [False, True]
    held = await fetch(backend, first.id)
    assert (held.state, held.worker_id, held.lease_token) == (JobState.RUNNING, "B", new.lease_token)
    assert await backend.complete_many([ack(new.id, new.lease_token, "B")]) == [True]
    assert (await fetch(backend, first.id)).result == "B"


async def test_a_repeated_ack_in_one_batch_counts_once(backend: Backend) -> None:
    await enqueue(backend)
    job = await claim_one(backend)
    answers = await backend.complete_many([ack(job.id, job.lease_token, "first"), ack(job.id, job.lease_token, "2nd")])
    assert answers == [True, False]
    assert (await fetch(backend, job.id)).result == "first"
    # And a later batch repeating it (a duplicate ack) changes nothing.
    assert await backend.complete_many([ack(job.id, job.lease_token, "again")]) == [False]
    assert (await fetch(backend, job.id)).result == "first"


async def test_dependents_are_released(backend: Backend) -> None:
    requires(backend, Capability.DEPENDENCIES)
    a = await enqueue(backend, queue="p")
    b = await enqueue(backend, queue="p")
    both = await enqueue(backend, queue="c", depends_on=(a.id, b.id))
    only_a = await enqueue(backend, queue="c", depends_on=(a.id,))
    also_other = await enqueue(backend, queue="c", depends_on=(a.id, only_a.id))
    assert {await state_of(backend, j.id) for j in (both, only_a, also_other)} == {"waiting"}
    ra, rb = await claim(backend, queue="p", limit=2)

    assert await backend.complete_many([ack(ra.id, ra.lease_token), ack(rb.id, rb.lease_token)]) == [True, True]
    assert await state_of(backend, both.id) == "queued"  # both its dependencies done in the same batch
    assert await state_of(backend, only_a.id) == "queued"
    assert await state_of(backend, also_other.id) == "waiting"  # still needs only_a
    assert {j.id for j in await claim(backend, queue="c", limit=5)} == {both.id, only_a.id}


async def test_refused_ack_releases_no_dependent(backend: Backend) -> None:
    requires(backend, Capability.DEPENDENCIES)
    parent = await enqueue(backend, queue="p")
    child = await enqueue(backend, queue="c", depends_on=(parent.id,))
    await claim_one(backend, queue="p")
    assert await backend.complete_many([ack(parent.id, "stale")]) == [False]
    assert await state_of(backend, child.id) == "waiting"


async def test_events_are_written_for_completed_jobs_only(backend: Backend) -> None:
    requires(backend, Capability.EVENTS)
    await enqueue(backend)
    await enqueue(backend)
    done, refused = await claim(backend, limit=2)
    assert await backend.complete_many([ack(done.id, done.lease_token), ack(refused.id, "stale")]) == [True, False]

    done_events = await backend.events(EventsRequest(done.id))
    assert [(e.type, e.state) for e in done_events][-1] == ("state", JobState.SUCCEEDED)
    assert [e.state for e in done_events].count(JobState.SUCCEEDED) == 1
    refused_events = await backend.events(EventsRequest(refused.id))
    assert JobState.SUCCEEDED not in [e.state for e in refused_events]
    assert [(e.type, e.state) for e in refused_events][-1] == ("state", JobState.RUNNING)
