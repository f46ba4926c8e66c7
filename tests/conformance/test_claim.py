"""Claim order, leases, heartbeats, fencing tokens and the worker-side writes they guard."""

from __future__ import annotations

import asyncio
from collections import Counter

from conveyor.backend import Backend
from conveyor.backend.protocol import (
    ArtifactRequest,
    CancelRequest,
    ClaimRequest,
    CompleteRequest,
    FailRequest,
    HeartbeatRequest,
    Lease,
    PauseRequest,
    ProgressRequest,
    ReleaseRequest,
)
from conveyor.reaper import reap_expired
from conveyor.types import Artifact, Job, JobState
from tests.conformance.conftest import OpenBackend, claim, claim_one, enqueue, fetch, req


async def test_claim_sets_lease_and_attempt(backend: Backend) -> None:
    job = await enqueue(backend)
    now = await backend.now()
    claimed = await claim_one(backend, lease=45.0, worker="worker-7")
    assert claimed.id == job.id
    assert claimed.state is JobState.RUNNING
    assert claimed.attempts == 1
    assert claimed.lease_token
    assert claimed.worker_id == "worker-7"
    assert claimed.lease_expires_at is not None and now + 40 <= claimed.lease_expires_at <= now + 60
    assert claimed.started_at is not None and now - 5 <= claimed.started_at <= now + 15
    stored = await backend.get(job.id)
    assert stored is not None
    assert (stored.state, stored.attempts, stored.lease_token) == (JobState.RUNNING, 1, claimed.lease_token)


async def test_claim_empty_and_limit_and_queue_selection(backend: Backend) -> None:
    assert await claim(backend) == []
    a = [await enqueue(backend, queue="a") for _ in range(3)]
    b = [await enqueue(backend, queue="b") for _ in range(2)]
    await enqueue(backend, queue="c")
    first = await backend.claim(ClaimRequest(worker_id="w", queues=("a", "b"), limit=4))
    assert len(first) == 4
    assert {j.queue for j in first} <= {"a", "b"}
    second = await backend.claim(ClaimRequest(worker_id="w", queues=("a", "b"), limit=4))
    assert len(second) == 1
    assert {j.id for j in first + second} == {j.id for j in a + b}
    assert len({j.lease_token for j in first + second}) == 5  # a new token per job
    assert await backend.claim(ClaimRequest(worker_id="w", queues=("a", "b"), limit=4)) == []
    assert [j.queue for j in await claim(backend, "c", limit=5)] == ["c"]


async def test_priority_then_fifo(backend: Backend) -> None:
    low1 = await enqueue(backend, args={"n": "low1"}, priority=0)
    high1 = await enqueue(backend, args={"n": "high1"}, priority=10)
    low2 = await enqueue(backend, args={"n": "low2"}, priority=0)
    mid = await enqueue(backend, args={"n": "mid"}, priority=5)
    high2 = await enqueue(backend, args={"n": "high2"}, priority=10)
    neg = await enqueue(backend, args={"n": "neg"}, priority=-3)
    expected = [high1, high2, mid, low1, low2, neg]
    one_by_one = [(await claim_one(backend)).id for _ in range(3)]
    rest = [j.id for j in await claim(backend, limit=10)]
    assert one_by_one + rest == [j.id for j in expected]


async def test_claim_order_spans_all_named_queues(backend: Backend) -> None:
    """One order over every queue of the claim, not queue by queue."""
    old_low = await enqueue(backend, queue="a", priority=0)
    new_high = await enqueue(backend, queue="b", priority=5)
    newer_low = await enqueue(backend, queue="b", priority=0)
    newest_mid = await enqueue(backend, queue="a", priority=1)
    both = ClaimRequest(worker_id="w", queues=("a", "b"), limit=1)
    order = [(await backend.claim(both))[0].id for _ in range(4)]
    assert order == [new_high.id, newest_mid.id, old_low.id, newer_low.id]


async def test_a_due_scheduled_job_keeps_its_place_by_run_at(backend: Backend) -> None:
    """Whether or not the promoter ran, a job due at t+10 goes before one submitted at t+20."""
    delayed = await enqueue(backend, delay=10)
    backend.clock_offset = 20
    later = await enqueue(backend)
    urgent_later = await enqueue(backend, priority=1)
    backend.clock_offset = 30
    order = [j.id for j in await claim(backend, limit=3)]
    assert order == [urgent_later.id, delayed.id, later.id]


async def test_a_batch_claim_returns_jobs_in_claim_order(backend: Backend) -> None:
    jobs = [await enqueue(backend, args={"i": i}, priority=i % 3) for i in range(9)]
    expected = sorted(jobs, key=lambda j: (-j.priority, j.args["i"]))
    assert [j.id for j in await claim(backend, limit=9)] == [j.id for j in expected]


async def test_queue_position(backend: Backend) -> None:
    first = await enqueue(backend)
    second = await enqueue(backend)
    urgent = await enqueue(backend, priority=5)
    other = await enqueue(backend, queue="other")
    scheduled = await enqueue(backend, delay=100)
    assert await backend.queue_position(urgent.id) == 0
    assert await backend.queue_position(first.id) == 1
    assert await backend.queue_position(second.id) == 2
    assert await backend.queue_position(other.id) == 0
    assert await backend.queue_position(scheduled.id) is None
    assert await backend.queue_position("0190a5e0-0000-7000-8000-00000000ffff") is None
    running = await claim_one(backend)
    assert running.id == urgent.id
    assert await backend.queue_position(urgent.id) is None
    assert await backend.queue_position(second.id) == 1


async def test_paused_queue_is_not_claimed(backend: Backend) -> None:
    paused_job = await enqueue(backend, queue="slow")
    other = await enqueue(backend, queue="fast")
    await backend.set_paused(PauseRequest("slow", True))
    both = ClaimRequest(worker_id="w", queues=("slow", "fast"), limit=5)
    assert [j.id for j in await backend.claim(both)] == [other.id]
    assert await backend.claim(both) == []
    stats = {s.queue: s for s in await backend.queue_stats()}
    assert stats["slow"].paused is True and stats["fast"].paused is False
    await backend.set_paused(PauseRequest("slow", False))
    assert [j.id for j in await backend.claim(both)] == [paused_job.id]
    stats = {s.queue: s for s in await backend.queue_stats()}
    assert stats["slow"].paused is False


async def test_pause_before_the_queue_has_jobs(backend: Backend) -> None:
    await backend.set_paused(PauseRequest("later", True))
    assert {s.queue: s.paused for s in await backend.queue_stats()}.get("later") is True
    await enqueue(backend, queue="later")
    assert await claim(backend, "later") == []


# -- heartbeat ----------------------------------------------------------------------------


async def test_heartbeat_extends_lease_and_answers_per_job(backend: Backend) -> None:
    for _ in range(3):
        await enqueue(backend)
    a, b, c = await claim(backend, limit=3, lease=30)
    await backend.cancel(CancelRequest(c.id))
    backend.clock_offset = 20.0
    answer = await backend.heartbeat(
        HeartbeatRequest(
            leases=(
                Lease(a.id, a.lease_token or ""),
                Lease(b.id, "not-the-token"),
                Lease(c.id, c.lease_token or ""),
                Lease("0190a5e0-0000-7000-8000-00000000ffff", "x"),
            ),
            lease_seconds=30,
        )
    )
    assert answer == {
        a.id: "ok",
        b.id: "lost",
        c.id: "canceled",
        "0190a5e0-0000-7000-8000-00000000ffff": "lost",
    }
    now = await backend.now()
    extended = await backend.get(a.id)
    assert extended is not None and extended.lease_expires_at is not None
    assert now + 25 <= extended.lease_expires_at <= now + 40
    assert extended.lease_token == a.lease_token  # same token after a heartbeat
    untouched = await backend.get(b.id)
    assert untouched is not None and untouched.lease_expires_at == b.lease_expires_at


async def test_heartbeat_keeps_a_job_from_being_reaped(backend: Backend) -> None:
    await enqueue(backend)
    job = await claim_one(backend, lease=30)
    for step in range(1, 5):
        backend.clock_offset = 20.0 * step
        assert await backend.heartbeat(HeartbeatRequest((Lease(job.id, job.lease_token or ""),), 30)) == {job.id: "ok"}
        assert await reap_expired(backend) == []
    backend.clock_offset = 80.0 + 31
    assert await reap_expired(backend) == [job.id]


async def test_empty_heartbeat(backend: Backend) -> None:
    assert await backend.heartbeat(HeartbeatRequest(())) == {}


# -- complete / progress / artifacts / release --------------------------------------------


async def test_complete_stores_result(backend: Backend) -> None:
    await enqueue(backend)
    job = await claim_one(backend)
    result = {"url": "https://example.com/r.pdf", "pages": 3, "ok": True, "list": [1, None]}
    assert await backend.complete(CompleteRequest(job.id, job.lease_token or "", result)) is True
    done = await backend.get(job.id)
    assert done is not None
    assert done.state is JobState.SUCCEEDED
    assert done.result == result
    assert done.finished_at is not None and done.finished_at >= (job.started_at or 0)
    assert done.attempts == 1
    # A second complete (duplicate ack) is refused and changes nothing.
    assert await backend.complete(CompleteRequest(job.id, job.lease_token or "", {"other": 1})) is False
    assert (await fetch(backend, job.id)).result == result


async def test_complete_with_scalar_and_none_results(backend: Backend) -> None:
    for value in (None, 0, "text", [1, 2], 2.5):
        await enqueue(backend)
        job = await claim_one(backend)
        assert await backend.complete(CompleteRequest(job.id, job.lease_token or "", value))
        assert (await fetch(backend, job.id)).result == value


async def test_progress_is_stored(backend: Backend) -> None:
    await enqueue(backend)
    job = await claim_one(backend)
    assert await backend.progress(ProgressRequest(job.id, job.lease_token or "", 0.25, "page 1 of 4"))
    stored = await backend.get(job.id)
    assert stored is not None and (stored.progress, stored.progress_message) == (0.25, "page 1 of 4")
    assert await backend.progress(ProgressRequest(job.id, job.lease_token or "", None, "indeterminate"))
    stored = await backend.get(job.id)
    assert stored is not None and stored.progress_message == "indeterminate"
    assert await backend.progress(ProgressRequest(job.id, "wrong", 0.9)) is False
    assert (await fetch(backend, job.id)).progress_message == "indeterminate"


async def test_artifacts_are_stored_and_replaced_by_name(backend: Backend) -> None:
    await enqueue(backend)
    job = await claim_one(backend)
    token = job.lease_token or ""
    pdf = Artifact("report.pdf", 1234, "application/pdf", "file:///results/report.pdf")
    csv = Artifact("data.csv", 10, "text/csv", "file:///results/data.csv")
    assert await backend.add_artifact(ArtifactRequest(job.id, token, pdf))
    assert await backend.add_artifact(ArtifactRequest(job.id, token, csv))
    bigger = Artifact("report.pdf", 9999, "application/pdf", "file:///results/report-v2.pdf")
    assert await backend.add_artifact(ArtifactRequest(job.id, token, bigger))
    assert await backend.add_artifact(ArtifactRequest(job.id, "wrong", csv)) is False
    stored = await backend.get(job.id)
    assert stored is not None
    assert sorted(stored.artifacts, key=lambda a: a.name) == [csv, bigger]
    assert await backend.complete(CompleteRequest(job.id, token))
    assert await backend.add_artifact(ArtifactRequest(job.id, token, pdf)) is False
    assert len((await fetch(backend, job.id)).artifacts) == 2


async def test_release_gives_the_attempt_back(backend: Backend) -> None:
    await enqueue(backend, max_attempts=1)
    job = await claim_one(backend)
    assert await backend.release(ReleaseRequest(job.id, "wrong")) is False
    assert await backend.release(ReleaseRequest(job.id, job.lease_token or "")) is True
    stored = await backend.get(job.id)
    assert stored is not None
    assert (stored.state, stored.attempts) == (JobState.QUEUED, 0)
    assert stored.lease_expires_at is None
    # The old token is dead, and the job runs again as attempt 1 of 1.
    assert await backend.complete(CompleteRequest(job.id, job.lease_token or "")) is False
    again = await claim_one(backend)
    assert again.id == job.id and again.attempts == 1 and again.lease_token != job.lease_token
    assert await backend.release(ReleaseRequest(job.id, job.lease_token or "")) is False


# -- fencing ------------------------------------------------------------------------------


async def test_stale_token_is_refused_everywhere_after_takeover(backend: Backend) -> None:
    """Worker A stalls past its lease, the job is reaped and re-claimed by B: every write of A is
    refused and B's result is the one kept."""
    await enqueue(backend, max_attempts=3)
    a = await claim_one(backend, lease=30, worker="A")
    backend.clock_offset = 31.0
    assert await reap_expired(backend) == [a.id]
    b = await claim_one(backend, lease=30, worker="B")
    assert b.id == a.id and b.attempts == 2
    assert b.lease_token != a.lease_token
    stale = a.lease_token or ""

    assert await backend.heartbeat(HeartbeatRequest((Lease(a.id, stale),))) == {a.id: "lost"}
    assert await backend.progress(ProgressRequest(a.id, stale, 0.99, "A")) is False
    pdf = Artifact("a.pdf", 1, "application/pdf", "file:///a.pdf")
    assert await backend.add_artifact(ArtifactRequest(a.id, stale, pdf)) is False
    assert await backend.fail(FailRequest(a.id, stale, {"type": "Boom", "message": "A"}, JobState.SCHEDULED, 1)) is None
    assert await backend.release(ReleaseRequest(a.id, stale)) is False
    assert await backend.complete(CompleteRequest(a.id, stale, {"by": "A"})) is False

    mid = await backend.get(a.id)
    assert mid is not None
    assert (mid.state, mid.attempts, mid.lease_token, mid.worker_id) == (JobState.RUNNING, 2, b.lease_token, "B")
    assert mid.artifacts == [] and mid.progress_message != "A"

    assert await backend.heartbeat(HeartbeatRequest((Lease(b.id, b.lease_token or ""),))) == {b.id: "ok"}
    assert await backend.complete(CompleteRequest(b.id, b.lease_token or "", {"by": "B"})) is True
    assert await backend.complete(CompleteRequest(a.id, stale, {"by": "A"})) is False
    final = await backend.get(a.id)
    assert final is not None and final.state is JobState.SUCCEEDED and final.result == {"by": "B"}


async def test_token_of_one_job_does_not_open_another(backend: Backend) -> None:
    await enqueue(backend)
    await enqueue(backend)
    a, b = await claim(backend, limit=2)
    assert await backend.complete(CompleteRequest(a.id, b.lease_token or "")) is False
    assert await backend.fail(FailRequest(b.id, a.lease_token or "", {"type": "X"}, JobState.FAILED)) is None
    assert {j.state for j in [await backend.get(a.id), await backend.get(b.id)] if j} == {JobState.RUNNING}


async def test_writes_on_jobs_that_are_not_running_are_refused(backend: Backend) -> None:
    queued = await enqueue(backend)
    for token in ("", "anything"):
        assert await backend.complete(CompleteRequest(queued.id, token)) is False
        assert await backend.fail(FailRequest(queued.id, token, {"type": "X"}, JobState.FAILED)) is None
        assert await backend.progress(ProgressRequest(queued.id, token, 0.5)) is False
        assert await backend.release(ReleaseRequest(queued.id, token)) is False
    unknown = "0190a5e0-0000-7000-8000-00000000ffff"
    assert await backend.complete(CompleteRequest(unknown, "t")) is False
    assert await backend.fail(FailRequest(unknown, "t", {"type": "X"}, JobState.SCHEDULED, 1.0)) is None
    assert (await fetch(backend, queued.id)).state is JobState.QUEUED


# -- concurrency --------------------------------------------------------------------------


async def test_concurrent_claimers_never_share_a_job(backend: Backend, open_backend: OpenBackend) -> None:
    """200 jobs, 8 independent instances (own connections) claiming in parallel batches.

    On a loaded machine one claimer may win every race of a round; the round then proves less
    (no overlap happened), so it is repeated on a fresh queue, up to three times, until the
    claims were really spread over several instances. Every round must hand each job out once.
    """
    claimers = await asyncio.gather(*(open_backend() for _ in range(8)))
    spread = False
    for round_ in range(3):
        queue = f"race{round_}"
        await backend.enqueue_many([req(queue=queue, args={"i": i}) for i in range(200)])
        start = asyncio.Event()

        async def drain(index: int, instance: Backend, queue: str = queue, start: asyncio.Event = start) -> list[Job]:
            got: list[Job] = []
            await start.wait()
            while True:
                batch = await instance.claim(ClaimRequest(worker_id=f"w{index}", queues=(queue,), limit=7))
                if not batch:
                    return got
                got.extend(batch)
                await asyncio.sleep(0)

        tasks = [asyncio.ensure_future(drain(i, b)) for i, b in enumerate(claimers)]
        await asyncio.sleep(0)
        start.set()
        per_claimer = await asyncio.gather(*tasks)
        counts = Counter(j.id for jobs in per_claimer for j in jobs)
        assert len(counts) == 200
        assert set(counts.values()) == {1}
        for index, jobs in enumerate(per_claimer):
            for job in jobs:
                assert job.worker_id == f"w{index}" and job.attempts == 1
        stats = {s.queue: s for s in await backend.queue_stats()}
        assert stats[queue].counts["running"] == 200 and stats[queue].counts["queued"] == 0
        if sum(1 for jobs in per_claimer if jobs) >= 2:
            spread = True
            break
    assert spread, "in three rounds a single claimer took every job: the race was never exercised"


async def test_concurrent_completes_and_reclaims_stay_consistent(backend: Backend, open_backend: OpenBackend) -> None:
    """Claim, complete and reap racing on several instances: every job ends succeeded once."""
    await backend.enqueue_many([req(args={"i": i}) for i in range(60)])
    workers = await asyncio.gather(*(open_backend() for _ in range(4)))
    completed: Counter[str] = Counter()

    async def work(index: int, instance: Backend) -> None:
        while True:
            batch = await instance.claim(ClaimRequest(worker_id=f"w{index}", queues=("default",), limit=3))
            if not batch:
                return
            for job in batch:
                if await instance.complete(CompleteRequest(job.id, job.lease_token or "", index)):
                    completed[job.id] += 1

    await asyncio.gather(*(work(i, w) for i, w in enumerate(workers)), reap_expired(backend))
    assert len(completed) == 60 and set(completed.values()) == {1}
    stats = {s.queue: s for s in await backend.queue_stats()}
    assert stats["default"].counts["succeeded"] == 60
