"""The bulk path of enqueue_many: plain requests (no key, dependency or depth limit) are stored
by one statement. It must store exactly what the one-by-one path stores: the same rows, events,
wake-ups, order and all-or-nothing atomicity with the slow-path requests of the same batch.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest

from conveyor import serde
from conveyor.backend.postgres.backend import PostgresBackend
from conveyor.backend.protocol import ClaimRequest, EnqueueRequest, EventsRequest, JobFilter
from conveyor.errors import DependencyError
from conveyor.types import Job, JobState, RetryPolicy
from tests.engines import engine_url

BIG = 2000


@pytest.fixture
def url(tmp_path: Path) -> Iterator[str]:
    with engine_url("postgres", tmp_path, private=True) as u:
        yield u


@pytest.fixture
async def backend(url: str) -> AsyncIterator[PostgresBackend]:
    b = PostgresBackend(url)
    await b.open()
    yield b
    await b.close()


def stored_counts(url: str) -> tuple[int, int]:
    with psycopg.connect(url) as conn:
        jobs = conn.execute("SELECT count(*) FROM conveyor.jobs").fetchone()
        events = conn.execute("SELECT count(*) FROM conveyor.job_events").fetchone()
    assert jobs is not None and events is not None
    return int(jobs[0]), int(events[0])


async def test_a_large_batch_is_stored_claimable_in_order_with_its_events(backend: PostgresBackend, url: str) -> None:
    reqs = [EnqueueRequest(task="t.bulk", args={"i": i}, queue="bulk") for i in range(BIG)]
    results = await backend.enqueue_many(reqs)

    assert [r.job.args["i"] for r in results] == list(range(BIG))
    assert all(r.created and r.job.state is JobState.QUEUED for r in results)
    ids = [r.job.id for r in results]
    assert len(set(ids)) == BIG
    # What enqueue_many answered is what is stored.
    for r in results[:: BIG // 20]:
        assert await backend.get(r.job.id) == r.job

    claimed: list[str] = []
    while True:
        jobs = await backend.claim(ClaimRequest("w", ("bulk",), limit=300, lease_seconds=60))
        if not jobs:
            break
        claimed.extend(j.id for j in jobs)
    assert claimed == ids  # every job, once, in submission order

    # One 'enqueued' event per job, written in submission order, as the one-by-one path does.
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT job_id, state, data FROM conveyor.job_events WHERE type = 'enqueued' ORDER BY seq"
        ).fetchall()
    assert [r[0] for r in rows] == ids
    assert all(r[1] == "queued" and serde.loads(r[2]).keys() == {"queue", "task", "run_at"} for r in rows)
    assert all(serde.loads(r[2])["queue"] == "bulk" and serde.loads(r[2])["task"] == "t.bulk" for r in rows)
    events = await backend.events(EventsRequest(ids[-1]))
    assert [(e.type, e.state) for e in events[:1]] == [("enqueued", JobState.QUEUED)]


async def test_a_batch_that_fails_midway_stores_nothing(backend: PostgresBackend, url: str) -> None:
    reqs = [EnqueueRequest(task="t", args={"i": i}, queue="q") for i in range(BIG - 1)]
    reqs.append(EnqueueRequest(task="t", args={}, queue="q", depends_on=("no-such-job",)))
    with pytest.raises(DependencyError):
        await backend.enqueue_many(reqs)
    assert stored_counts(url) == (0, 0)
    assert await backend.claim(ClaimRequest("w", ("q",), limit=10)) == []


async def test_a_plain_run_after_a_failing_request_is_rolled_back_too(backend: PostgresBackend, url: str) -> None:
    reqs = [EnqueueRequest(task="t", args={"a": 1}, queue="q", idempotency_key="k")]
    reqs.append(EnqueueRequest(task="t", args={}, queue="q", depends_on=("missing",)))
    reqs.extend(EnqueueRequest(task="t", args={"i": i}, queue="q") for i in range(5))
    with pytest.raises(DependencyError):
        await backend.enqueue_many(reqs)
    assert stored_counts(url) == (0, 0)


async def test_mixed_batch_keeps_order_and_may_depend_on_an_earlier_plain_job(backend: PostgresBackend) -> None:
    first = "0190a5e0-0000-7000-8000-0000000000aa"
    reqs = [
        EnqueueRequest(task="t", args={"n": 0}, queue="q", job_id=first),
        EnqueueRequest(task="t", args={"n": 1}, queue="q"),
        EnqueueRequest(task="t", args={"n": 2}, queue="q", depends_on=(first,)),
        EnqueueRequest(task="t", args={"n": 3}, queue="q", idempotency_key="k"),
        EnqueueRequest(task="t", args={"n": 3}, queue="q", idempotency_key="k"),
        EnqueueRequest(task="t", args={"n": 5}, queue="q", delay=3600),
        EnqueueRequest(task="t", args={"n": 6}, queue="q"),
    ]
    results = await backend.enqueue_many(reqs)
    assert [r.job.args["n"] for r in results] == [0, 1, 2, 3, 3, 5, 6]
    assert [r.created for r in results] == [True, True, True, True, False, True, True]
    assert [r.job.state for r in results] == [
        JobState.QUEUED,
        JobState.QUEUED,
        JobState.WAITING,
        JobState.QUEUED,
        JobState.QUEUED,
        JobState.SCHEDULED,
        JobState.QUEUED,
    ]
    assert results[0].job.id == first
    claimed = await backend.claim(ClaimRequest("w", ("q",), limit=10, lease_seconds=60))
    assert [j.args["n"] for j in claimed] == [0, 1, 3, 6]


def _comparable(job: Job, absolute_run_at: bool) -> tuple[Job, float]:
    """A job without what differs between two enqueues of the same request (id, times)."""
    run_at = job.run_at if absolute_run_at else job.run_at - job.created_at
    return dataclasses.replace(job, id="", created_at=0.0, updated_at=0.0, run_at=0.0), run_at


async def test_bulk_and_step_paths_store_the_same_job(backend: PostgresBackend) -> None:
    backend.clock_offset = 1000.0  # the engine clock, plus the offset, decides queued vs scheduled
    now = time.time()
    shapes: list[dict[str, object]] = [
        {},
        {"delay": 30.0},
        {"run_at": now + 500.0},  # in the past by the offset clock: queued
        {"run_at": now + 5000.0},  # in the future even with the offset: scheduled
        {"run_at": now - 10.0, "priority": 7, "tenant": "acme", "timeout": 12, "max_attempts": 9},
        {"retry": RetryPolicy(base_delay=2.5, factor=3.0, max_delay=60.0, jitter=False), "args": {"x": [1, "é"]}},
    ]
    for shape in shapes:
        fields = {"task": "t.same", "args": {"k": 1}, "queue": "same", **shape}
        plain = EnqueueRequest(**fields)  # type: ignore[arg-type]
        stepped = dataclasses.replace(plain, max_depth=1_000_000)  # a depth limit takes the step path
        bulk_job = (await backend.enqueue_many([plain, plain]))[1].job
        step_job = (await backend.enqueue_many([stepped]))[0].job
        absolute = "run_at" in shape
        got, want = _comparable(bulk_job, absolute), _comparable(step_job, absolute)
        assert got[0] == want[0], shape
        assert got[1] == pytest.approx(want[1], abs=1e-3), shape
        assert await backend.get(bulk_job.id) == bulk_job
    page = await backend.list_jobs(JobFilter(queue="same", limit=100))
    assert len(page.jobs) == 3 * len(shapes)


async def test_queued_and_scheduled_jobs_wake_their_queues(backend: PostgresBackend, url: str) -> None:
    listener = await psycopg.AsyncConnection.connect(url, autocommit=True)
    try:
        await listener.execute("LISTEN conveyor")
        await backend.enqueue_many(
            [EnqueueRequest(task="t", args={}, queue=q) for q in ("a", "b", "a")]
            + [EnqueueRequest(task="t", args={}, queue="later", delay=3600)]
        )
        # A marker sent after the batch committed: notifications arrive in commit order.
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("NOTIFY conveyor, 'marker'")
        seen: list[str] = []
        async for note in listener.notifies(timeout=30):
            if note.payload == "marker":
                break
            seen.append(note.payload)
    finally:
        await listener.close()
    # One wake per queue that got runnable work, and one for the queue of a new scheduled job:
    # a worker asleep until its next due job must learn of an earlier one (due-time precision).
    assert sorted(seen) == ["a", "b", "later"]
