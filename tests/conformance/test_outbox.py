"""The notification outbox: every terminal change records one entry in the same write.

Entries are what the worker nodes turn into webhook deliveries (docs/decisions/0002-webhooks.md),
so an entry must exist exactly when a job reached succeeded / failed / canceled, must be handed
out again when its taker did not ack within the lease, and must go away with its job.
"""

from __future__ import annotations

from conveyor.backend import Backend
from conveyor.backend.protocol import (
    CancelRequest,
    CompleteRequest,
    FailRequest,
    OutboxEntry,
    OutboxRequest,
    PruneRequest,
    RedriveRequest,
    ReleaseRequest,
)
from conveyor.reaper import reap_expired
from conveyor.types import JobState
from tests.conformance.conftest import claim_one, enqueue, fetch


async def drain(backend: Backend) -> list[OutboxEntry]:
    """Take and ack everything there is now."""
    entries = await backend.take_outbox(OutboxRequest(limit=1000))
    await backend.ack_outbox([e.seq for e in entries])
    return entries


def ended(entries: list[OutboxEntry]) -> list[tuple[str, JobState]]:
    return [(e.job_id, e.state) for e in entries]


async def test_each_terminal_transition_records_one_entry(backend: Backend) -> None:
    done = await enqueue(backend, queue="a")
    dead = await enqueue(backend, queue="b")
    retried = await enqueue(backend, queue="c")
    released = await enqueue(backend, queue="d")
    canceled = await enqueue(backend, delay=100)
    assert await drain(backend) == []  # enqueue, claim, retry, release: not terminal

    token = (await claim_one(backend, "a")).lease_token or ""
    assert await backend.complete(CompleteRequest(done.id, token, 1))
    token = (await claim_one(backend, "b")).lease_token or ""
    assert (
        await backend.fail(FailRequest(dead.id, token, error={"type": "X"}, state=JobState.FAILED)) is JobState.FAILED
    )
    token = (await claim_one(backend, "c")).lease_token or ""
    assert (
        await backend.fail(FailRequest(retried.id, token, error={"type": "X"}, state=JobState.SCHEDULED, retry_delay=5))
        is JobState.SCHEDULED
    )
    token = (await claim_one(backend, "d")).lease_token or ""
    assert await backend.release(ReleaseRequest(released.id, token))
    await backend.cancel(CancelRequest(canceled.id))

    entries = await drain(backend)
    assert ended(entries) == [
        (done.id, JobState.SUCCEEDED),
        (dead.id, JobState.FAILED),
        (canceled.id, JobState.CANCELED),
    ]
    assert [e.seq for e in entries] == sorted({e.seq for e in entries})
    job = await fetch(backend, done.id)
    assert entries[0].at == job.finished_at
    assert await drain(backend) == []  # acked entries are gone


async def test_an_expired_last_attempt_and_a_cascade_are_recorded(backend: Backend) -> None:
    parent = await enqueue(backend, queue="p", delay=100)
    child = await enqueue(backend, depends_on=(parent.id,))
    lost = await enqueue(backend, queue="l", max_attempts=1)
    await claim_one(backend, "l", lease=10)
    backend.clock_offset = 20
    assert await reap_expired(backend) == [lost.id]
    await backend.cancel(CancelRequest(parent.id))
    late = await enqueue(backend, depends_on=(parent.id,))  # created canceled: its dependency is
    assert late.state is JobState.CANCELED

    got = sorted(ended(await drain(backend)))
    want = [(lost.id, JobState.FAILED), (parent.id, JobState.CANCELED), (child.id, JobState.CANCELED)]
    want.append((late.id, JobState.CANCELED))
    assert got == sorted(want)


async def test_a_job_that_ends_twice_is_recorded_twice(backend: Backend) -> None:
    job = await enqueue(backend)
    for _ in range(2):
        token = (await claim_one(backend)).lease_token or ""
        await backend.fail(FailRequest(job.id, token, error={"type": "X"}, state=JobState.FAILED))
        if _ == 0:
            assert await backend.redrive(RedriveRequest((job.id,))) == 1
    assert ended(await drain(backend)) == [(job.id, JobState.FAILED)] * 2


async def test_taken_entries_are_leased_until_acked(backend: Backend) -> None:
    jobs = [await enqueue(backend, delay=100) for _ in range(3)]
    for job in jobs:
        await backend.cancel(CancelRequest(job.id))
    first = await backend.take_outbox(OutboxRequest(limit=2, lease_seconds=30))
    assert [e.job_id for e in first] == [j.id for j in jobs[:2]]
    second = await backend.take_outbox(OutboxRequest(limit=10, lease_seconds=30))
    assert [e.job_id for e in second] == [jobs[2].id]  # the first two are leased
    assert await backend.take_outbox(OutboxRequest(limit=10)) == []

    await backend.ack_outbox([first[0].seq, 10**12])  # an unknown seq is ignored
    backend.clock_offset = 31  # the taker of first[1] and second died: they come back
    again = await backend.take_outbox(OutboxRequest(limit=10))
    assert sorted(e.seq for e in again) == sorted([first[1].seq, second[0].seq])
    await backend.ack_outbox([e.seq for e in again])
    await backend.ack_outbox([e.seq for e in again])  # twice is harmless
    backend.clock_offset = 100
    assert await backend.take_outbox(OutboxRequest(limit=10)) == []


async def test_pruning_a_job_removes_its_entries(backend: Backend) -> None:
    old = await enqueue(backend, delay=100)
    await backend.cancel(CancelRequest(old.id))
    backend.clock_offset = 1000
    recent = await enqueue(backend, delay=100)
    await backend.cancel(CancelRequest(recent.id))
    assert await backend.prune(PruneRequest(older_than=500)) == 1
    assert ended(await drain(backend)) == [(recent.id, JobState.CANCELED)]


async def test_the_callback_url_is_stored_with_the_job(backend: Backend) -> None:
    url = "https://hooks.example.com/cb?ref=7"
    job = await enqueue(backend, callback_url=url)
    assert job.callback_url == url
    assert (await fetch(backend, job.id)).callback_url == url
    assert (await enqueue(backend)).callback_url is None
