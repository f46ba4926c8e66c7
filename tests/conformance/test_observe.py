"""Reads and housekeeping: list_jobs, queue_stats, events, prune, drain_stats, wait_for_work
(effects: test_effects.py)."""

from __future__ import annotations

import asyncio
import time

from conveyor.backend import Backend
from conveyor.backend.protocol import (
    CancelRequest,
    Capability,
    CompleteRequest,
    EventsRequest,
    FailRequest,
    JobFilter,
    ProgressRequest,
    PruneRequest,
)
from conveyor.types import Job, JobState
from tests.conformance.conftest import OpenBackend, claim_one, enqueue, req, requires

# -- list_jobs ----------------------------------------------------------------------------


async def test_list_jobs_filters(backend: Backend) -> None:
    a1 = await enqueue(backend, task="a", queue="q1", tenant="acme")
    a2 = await enqueue(backend, task="a", queue="q2", tenant="acme")
    b1 = await enqueue(backend, task="b", queue="q1", tenant="globex")
    running = await claim_one(backend, "q1")  # a1: oldest in q1
    assert running.id == a1.id

    def ids(page_jobs: list[Job]) -> set[str]:
        return {j.id for j in page_jobs}

    assert ids((await backend.list_jobs(JobFilter())).jobs) == {a1.id, a2.id, b1.id}
    assert ids((await backend.list_jobs(JobFilter(tenant="acme"))).jobs) == {a1.id, a2.id}
    assert ids((await backend.list_jobs(JobFilter(tenant="nobody"))).jobs) == set()
    assert ids((await backend.list_jobs(JobFilter(queue="q1"))).jobs) == {a1.id, b1.id}
    assert ids((await backend.list_jobs(JobFilter(task="b"))).jobs) == {b1.id}
    assert ids((await backend.list_jobs(JobFilter(states=(JobState.RUNNING,)))).jobs) == {a1.id}
    both = JobFilter(states=(JobState.RUNNING, JobState.QUEUED), tenant="acme", queue="q2")
    assert ids((await backend.list_jobs(both)).jobs) == {a2.id}
    page = await backend.list_jobs(JobFilter(tenant="acme", task="a"))
    assert page.next_cursor is None
    assert [j.state for j in sorted(page.jobs, key=lambda j: j.queue)] == [JobState.RUNNING, JobState.QUEUED]


async def test_list_jobs_pages_newest_first_without_gaps(backend: Backend) -> None:
    await backend.enqueue_many([req(args={"i": i}) for i in range(23)])
    await enqueue(backend, queue="other")
    seen: list[Job] = []
    cursor: str | None = None
    pages = 0
    while True:
        page = await backend.list_jobs(JobFilter(queue="default", limit=5, cursor=cursor))
        pages += 1
        assert len(page.jobs) <= 5
        seen.extend(page.jobs)
        if page.next_cursor is None:
            break
        assert len(page.jobs) == 5
        cursor = page.next_cursor
    assert pages == 5
    assert len(seen) == 23 and len({j.id for j in seen}) == 23
    assert [j.id for j in seen] == sorted((j.id for j in seen), reverse=True)
    # Ids are time-ordered: newest first means the last submitted comes first.
    assert [j.args["i"] for j in seen] == list(reversed(range(23)))


async def test_list_jobs_exact_page(backend: Backend) -> None:
    for _ in range(4):
        await enqueue(backend)
    first = await backend.list_jobs(JobFilter(limit=2))
    assert len(first.jobs) == 2 and first.next_cursor is not None
    second = await backend.list_jobs(JobFilter(limit=2, cursor=first.next_cursor))
    assert len(second.jobs) == 2 and second.next_cursor is None


# -- queue_stats --------------------------------------------------------------------------


async def test_queue_stats_counts_every_state(backend: Backend) -> None:
    requires(backend, Capability.DEPENDENCIES)
    for _ in range(3):
        await enqueue(backend)
    await enqueue(backend, delay=100)
    parent = await enqueue(backend, queue="other")
    await enqueue(backend, depends_on=(parent.id,))
    ok = await claim_one(backend)
    await backend.complete(CompleteRequest(ok.id, ok.lease_token or ""))
    bad = await claim_one(backend)
    await backend.fail(FailRequest(bad.id, bad.lease_token or "", {"type": "X"}, JobState.FAILED))
    await claim_one(backend)
    canceled = await enqueue(backend)
    await backend.cancel(CancelRequest(canceled.id))
    await enqueue(backend)

    stats = {s.queue: s for s in await backend.queue_stats()}
    assert set(stats) == {"default", "other"}
    assert stats["default"].counts == {
        "waiting": 1,
        "scheduled": 1,
        "queued": 1,
        "running": 1,
        "succeeded": 1,
        "failed": 1,
        "canceled": 1,
    }
    assert stats["default"].pending == 3
    assert stats["other"].counts["queued"] == 1
    assert sum(stats["other"].counts.values()) == 1


async def test_queue_stats_oldest_age_and_tenant(backend: Backend) -> None:
    assert await backend.queue_stats() == []
    await enqueue(backend, tenant="acme")
    backend.clock_offset = 100
    await enqueue(backend, tenant="globex")
    await enqueue(backend, queue="empty-after-claim")
    await claim_one(backend, "empty-after-claim")
    backend.clock_offset = 130
    stats = {s.queue: s for s in await backend.queue_stats()}
    age = stats["default"].oldest_queued_age
    assert age is not None and 125 <= age <= 200
    assert stats["empty-after-claim"].oldest_queued_age is None
    theirs = {s.queue: s for s in await backend.queue_stats(tenant="globex")}
    assert set(theirs) == {"default"}
    assert theirs["default"].counts["queued"] == 1
    assert theirs["default"].oldest_queued_age is not None and 25 <= theirs["default"].oldest_queued_age <= 100


# -- events -------------------------------------------------------------------------------


async def test_events_record_the_lifecycle(backend: Backend) -> None:
    requires(backend, Capability.EVENTS)
    job = await enqueue(backend, max_attempts=2)
    first = await claim_one(backend)
    await backend.progress(ProgressRequest(job.id, first.lease_token or "", 0.5, "half"))
    await backend.fail(
        FailRequest(job.id, first.lease_token or "", {"type": "X", "message": "m"}, JobState.SCHEDULED, 0)
    )
    second = await claim_one(backend)
    await backend.complete(CompleteRequest(job.id, second.lease_token or "", 42))
    everything = await backend.events(EventsRequest(job.id))
    assert all(e.job_id == job.id for e in everything)
    # A due retry may be promoted (scheduled -> queued) before it is claimed, or claimed
    # straight from scheduled: both are legal, so an optional promotion event is skipped.
    events = [
        e
        for i, e in enumerate(everything)
        if not (e.state is JobState.QUEUED and i > 0 and everything[i - 1].state is JobState.SCHEDULED)
    ]
    assert [(e.type, e.state) for e in events] == [
        ("enqueued", JobState.QUEUED),
        ("state", JobState.RUNNING),
        ("progress", JobState.RUNNING),
        ("state", JobState.SCHEDULED),
        ("state", JobState.RUNNING),
        ("state", JobState.SUCCEEDED),
    ]
    assert events[2].data.get("fraction") == 0.5 and events[2].data.get("message") == "half"
    assert events[3].data.get("error") == {"type": "X", "message": "m"}
    seqs = [e.seq for e in everything]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    ats = [e.at for e in everything]
    assert ats == sorted(ats)


async def test_events_resume_by_seq_without_gaps(backend: Backend, open_backend: OpenBackend) -> None:
    """An observer paging with after_seq (while other instances write) sees every event once."""
    requires(backend, Capability.EVENTS)
    job = await enqueue(backend)
    worker = await open_backend()
    claimed = await claim_one(worker)
    seen: list[int] = [e.seq for e in await backend.events(EventsRequest(job.id, limit=1))]
    assert len(seen) == 1

    async def report() -> None:
        for i in range(30):
            assert await worker.progress(ProgressRequest(job.id, claimed.lease_token or "", i / 30, f"step {i}"))

    async def observe() -> None:
        for _ in range(200):
            batch = await backend.events(EventsRequest(job.id, after_seq=seen[-1], limit=4))
            assert len(batch) <= 4
            seen.extend(e.seq for e in batch)
            if len(seen) >= 32:
                return
            await asyncio.sleep(0)

    await asyncio.gather(report(), observe())
    while batch := await backend.events(EventsRequest(job.id, after_seq=seen[-1], limit=4)):
        seen.extend(e.seq for e in batch)
    everything = await backend.events(EventsRequest(job.id))
    assert seen == [e.seq for e in everything]
    assert len(everything) == 32  # enqueued + running + 30 progress
    assert await backend.events(EventsRequest(job.id, after_seq=everything[-1].seq)) == []


async def test_events_seq_is_monotonic_across_jobs(backend: Backend) -> None:
    requires(backend, Capability.EVENTS)
    a = await enqueue(backend)
    b = await enqueue(backend)
    claimed = await claim_one(backend)
    assert claimed.id == a.id
    ev_a = await backend.events(EventsRequest(a.id))
    ev_b = await backend.events(EventsRequest(b.id))
    assert ev_a[0].seq < ev_b[0].seq < ev_a[1].seq
    assert await backend.events(EventsRequest("0190a5e0-0000-7000-8000-00000000ffff")) == []


# -- prune --------------------------------------------------------------------------------


async def test_prune_deletes_only_old_finished_jobs(backend: Backend) -> None:
    old = await enqueue(backend)
    claimed = await claim_one(backend)
    await backend.complete(CompleteRequest(claimed.id, claimed.lease_token or ""))
    old_canceled = await enqueue(backend, queue="c")
    await backend.cancel(CancelRequest(old_canceled.id))
    still_queued = await enqueue(backend)
    backend.clock_offset = 1000
    recent = await enqueue(backend)
    claimed = await claim_one(backend)
    assert claimed.id == still_queued.id
    await backend.complete(CompleteRequest(claimed.id, claimed.lease_token or ""))
    await claim_one(backend)  # `recent` stays running

    assert await backend.prune(PruneRequest(older_than=500)) == 2
    assert await backend.get(old.id) is None
    assert await backend.get(old_canceled.id) is None
    assert (await backend.get(still_queued.id)) is not None
    assert (await backend.get(recent.id)) is not None
    if Capability.EVENTS in backend.capabilities:
        assert await backend.events(EventsRequest(old.id)) == []
    assert await backend.prune(PruneRequest(older_than=500)) == 0
    assert {j.id for j in (await backend.list_jobs(JobFilter())).jobs} == {still_queued.id, recent.id}


async def test_prune_honours_per_queue_retention(backend: Backend) -> None:
    done = {}
    for queue in ("default", "short", "long"):
        await enqueue(backend, queue=queue)
        job = await claim_one(backend, queue)
        await backend.complete(CompleteRequest(job.id, job.lease_token or ""))
        done[queue] = job.id
    per_queue = (("short", 10.0), ("long", 5000.0))
    backend.clock_offset = 100
    # the default keeps 500 s, "short" 10 s, "long" 5000 s: at +100 s only the short queue's job goes
    assert await backend.prune(PruneRequest(older_than=500, queues=per_queue)) == 1
    assert await backend.get(done["short"]) is None and await backend.get(done["default"]) is not None
    backend.clock_offset = 1000
    assert await backend.prune(PruneRequest(older_than=500, queues=per_queue)) == 1
    assert await backend.get(done["default"]) is None and await backend.get(done["long"]) is not None


async def test_prune_forgets_expired_idempotency_keys(backend: Backend) -> None:
    first = await backend.enqueue(req(idempotency_key="k", idempotency_ttl=60))
    backend.clock_offset = 100
    assert await backend.prune(PruneRequest(older_than=3600)) == 0  # the job itself is pending
    second = await backend.enqueue(req(args={"other": 1}, idempotency_key="k"))
    assert second.created and second.job.id != first.job.id


# -- drain_stats --------------------------------------------------------------------------


async def test_drain_stats_counts_recent_finishes(backend: Backend) -> None:
    for _ in range(3):
        await enqueue(backend)
    for _ in range(2):
        job = await claim_one(backend)
        await backend.complete(CompleteRequest(job.id, job.lease_token or ""))
    await enqueue(backend, queue="other")
    job = await claim_one(backend, "other")
    await backend.fail(FailRequest(job.id, job.lease_token or "", {"type": "X"}, JobState.FAILED))
    assert await backend.drain_stats("default", 60) == 2
    assert await backend.drain_stats("other", 60) == 1
    assert await backend.drain_stats("nothing", 60) == 0
    backend.clock_offset = 100
    job = await claim_one(backend)
    await backend.complete(CompleteRequest(job.id, job.lease_token or ""))
    assert await backend.drain_stats("default", 60) == 1
    assert await backend.drain_stats("default", 3600) == 3


# -- wait_for_work ------------------------------------------------------------------------


async def test_wait_for_work_wakes_on_enqueue_from_another_instance(
    backend: Backend, open_backend: OpenBackend
) -> None:
    """The waiter must wake well before its timeout. We cannot see when it starts listening, so
    the producer keeps submitting (every 0.5 s) until it wakes: an engine that wakes on
    notification returns within moments, one that misses them sleeps the full timeout."""
    producer = await open_backend()
    timeout = 10.0
    for _ in range(2):  # twice: a waiter must also work after it was woken once
        started = time.monotonic()
        waiter = asyncio.create_task(backend.wait_for_work(("default",), timeout))
        while not waiter.done() and time.monotonic() - started < timeout + 5:
            await asyncio.sleep(0.5)
            await producer.enqueue(req())
        await asyncio.wait_for(waiter, 5)
        assert time.monotonic() - started < timeout - 1, "woke only at its timeout: every enqueue was missed"


async def test_wait_for_work_returns_at_its_timeout_when_idle(backend: Backend) -> None:
    await asyncio.wait_for(backend.wait_for_work(("default",), 0.2), 10)
