"""Failures, retries with backoff, dead letters and reaping of expired leases."""

from __future__ import annotations

from conveyor import states
from conveyor.backend import Backend
from conveyor.backend.protocol import CompleteRequest, EventsRequest, FailRequest
from conveyor.reaper import reap_expired
from conveyor.types import Job, JobState
from tests.conformance.conftest import claim, claim_one, enqueue, fetch

BOOM = {"type": "ValueError", "message": "boom", "traceback": "Traceback ...\nValueError: boom"}


async def test_fail_with_retry_schedules_the_next_attempt(backend: Backend) -> None:
    await enqueue(backend, max_attempts=3)
    job = await claim_one(backend)
    now = await backend.now()
    assert (
        await backend.fail(FailRequest(job.id, job.lease_token or "", BOOM, JobState.SCHEDULED, 100))
        is JobState.SCHEDULED
    )
    stored = await backend.get(job.id)
    assert stored is not None
    assert stored.state is JobState.SCHEDULED
    assert stored.error == BOOM
    assert stored.attempts == 1
    assert now + 95 <= stored.run_at <= now + 110
    assert stored.finished_at is None
    # The backoff is honoured: not claimable early, claimable once due, as attempt 2.
    assert await claim(backend) == []
    backend.clock_offset = 50
    assert await claim(backend) == []
    backend.clock_offset = 101
    again = await claim_one(backend)
    assert again.id == job.id and again.attempts == 2 and again.lease_token != job.lease_token


async def test_fail_with_zero_delay_is_claimable_at_once(backend: Backend) -> None:
    await enqueue(backend)
    job = await claim_one(backend)
    assert (
        await backend.fail(FailRequest(job.id, job.lease_token or "", BOOM, JobState.SCHEDULED, 0))
        is JobState.SCHEDULED
    )
    assert (await claim_one(backend)).attempts == 2


async def test_fail_without_retry_dead_letters(backend: Backend) -> None:
    await enqueue(backend, max_attempts=5)
    job = await claim_one(backend)
    assert await backend.fail(FailRequest(job.id, job.lease_token or "", BOOM, JobState.FAILED)) is JobState.FAILED
    stored = await backend.get(job.id)
    assert stored is not None
    assert (stored.state, stored.attempts, stored.error) == (JobState.FAILED, 1, BOOM)
    assert stored.finished_at is not None
    assert await claim(backend) == []
    # Fenced off now: a second report is refused.
    assert await backend.fail(FailRequest(job.id, job.lease_token or "", BOOM, JobState.FAILED)) is None


def decided(job: Job, delay: float) -> FailRequest:
    """The failure report a worker sends: the lifecycle (states.after_failure) picks the state."""
    state = states.after_failure(job.attempts, job.max_attempts, retryable=True)
    return FailRequest(job.id, job.lease_token or "", BOOM, state, delay)


async def test_attempts_exhausted_dead_letters_even_with_a_retry_delay(backend: Backend) -> None:
    await enqueue(backend, max_attempts=2)
    first = await claim_one(backend)
    assert await backend.fail(decided(first, 0)) is JobState.SCHEDULED
    second = await claim_one(backend)
    assert second.attempts == 2
    assert await backend.fail(decided(second, 0)) is JobState.FAILED
    assert (await fetch(backend, first.id)).state is JobState.FAILED


async def test_max_attempts_one_never_retries(backend: Backend) -> None:
    await enqueue(backend, max_attempts=1)
    job = await claim_one(backend)
    assert await backend.fail(decided(job, 5.0)) is JobState.FAILED


async def test_the_engine_applies_the_decided_state_not_its_own(backend: Backend) -> None:
    """A retry decided for a job that has attempts left is stored as decided, and so is a dead
    letter decided while attempts remain (a non-retryable error): the engine never re-derives."""
    await enqueue(backend, max_attempts=1)
    job = await claim_one(backend)
    # attempts exhausted, yet the caller decided a retry (e.g. a policy that grants one more): applied
    assert await backend.fail(FailRequest(job.id, job.lease_token or "", BOOM, JobState.SCHEDULED, 0)) is (
        JobState.SCHEDULED
    )


async def test_complete_after_a_retry(backend: Backend) -> None:
    await enqueue(backend, max_attempts=3)
    first = await claim_one(backend)
    await backend.fail(FailRequest(first.id, first.lease_token or "", BOOM, JobState.SCHEDULED, 0))
    second = await claim_one(backend)
    assert await backend.complete(CompleteRequest(second.id, second.lease_token or "", "ok"))
    assert await backend.complete(CompleteRequest(first.id, first.lease_token or "", "stale")) is False
    stored = await backend.get(first.id)
    assert stored is not None and (stored.state, stored.result, stored.attempts) == (JobState.SUCCEEDED, "ok", 2)


# -- reaping ------------------------------------------------------------------------------


async def test_reap_requeues_an_expired_lease(backend: Backend) -> None:
    await enqueue(backend, max_attempts=3)
    job = await claim_one(backend, lease=30)
    backend.clock_offset = 20
    assert await reap_expired(backend) == []
    assert (await fetch(backend, job.id)).state is JobState.RUNNING
    backend.clock_offset = 31
    assert await reap_expired(backend) == [job.id]
    stored = await backend.get(job.id)
    assert stored is not None
    assert stored.state is JobState.QUEUED
    assert stored.attempts == 1  # the lost attempt counts
    assert stored.error is not None and stored.error["type"] == "LeaseExpired"
    assert stored.lease_expires_at is None
    assert await reap_expired(backend) == []
    assert (await claim_one(backend)).attempts == 2


async def test_reap_fails_a_job_whose_attempts_are_exhausted(backend: Backend) -> None:
    """A job that kills every worker that touches it still reaches failed after max_attempts."""
    job = await enqueue(backend, max_attempts=3)
    for attempt in range(1, 4):
        claimed = await claim_one(backend, lease=10)
        assert claimed.attempts == attempt
        backend.clock_offset += 11
        assert await reap_expired(backend) == [job.id]
    stored = await backend.get(job.id)
    assert stored is not None
    assert stored.state is JobState.FAILED
    assert stored.attempts == 3
    assert stored.error is not None and stored.error["type"] == "LeaseExpired"
    assert stored.finished_at is not None
    assert await claim(backend) == []


async def test_reap_only_touches_expired_leases(backend: Backend) -> None:
    for _ in range(3):
        await enqueue(backend)
    short = await claim_one(backend, lease=10)
    long = await claim_one(backend, lease=100)
    backend.clock_offset = 50
    assert await reap_expired(backend) == [short.id]
    assert (await fetch(backend, long.id)).state is JobState.RUNNING
    stats = {s.queue: s for s in await backend.queue_stats()}["default"]
    assert (stats.counts["queued"], stats.counts["running"]) == (2, 1)


async def test_reap_returns_every_expired_job_across_queues(backend: Backend) -> None:
    ids = set()
    for queue in ("a", "b", "c"):
        await enqueue(backend, queue=queue)
        ids.add((await claim_one(backend, queue, lease=5)).id)
    backend.clock_offset = 6
    assert set(await reap_expired(backend)) == ids


async def test_a_job_that_succeeds_after_a_retry_carries_no_error(backend: Backend) -> None:
    """Earlier attempts' errors live in the job's events; the succeeded job itself has none
    (``complete`` and ``complete_many`` alike)."""
    first = await enqueue(backend, max_attempts=3)
    second = await enqueue(backend, max_attempts=3)
    for job in (await claim_one(backend), await claim_one(backend)):
        assert await backend.fail(FailRequest(job.id, job.lease_token or "", BOOM, JobState.SCHEDULED, 0))
    one, two = sorted([await claim_one(backend), await claim_one(backend)], key=lambda j: j.id != first.id)
    assert await backend.complete(CompleteRequest(one.id, one.lease_token or "", 1))
    assert await backend.complete_many([CompleteRequest(two.id, two.lease_token or "", 2)]) == [True]
    for job_id in (first.id, second.id):
        stored = await fetch(backend, job_id)
        assert stored.state is JobState.SUCCEEDED and stored.error is None, stored
        events = await backend.events(EventsRequest(job_id, 0, 100))
        assert any(e.data.get("error", {}).get("message") == "boom" for e in events)
