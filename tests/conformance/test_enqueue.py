"""Enqueue, enqueue_many, get, delays, backpressure and idempotent submits."""

from __future__ import annotations

import asyncio

import pytest

from conveyor.backend import Backend
from conveyor.backend.protocol import Capability, EnqueueRequest, JobFilter
from conveyor.errors import DependencyError, DuplicateJobId, IdempotencyConflict, QueueFull
from conveyor.types import JobState, RetryPolicy
from tests.conformance.conftest import OpenBackend, claim, claim_one, enqueue, fetch, req, requires


async def test_enqueue_stores_every_field(backend: Backend) -> None:
    before = await backend.now()
    retry = RetryPolicy(base_delay=2.0, factor=3.0, max_delay=60.0, jitter=False)
    res = await backend.enqueue(
        EnqueueRequest(
            task="reports.build",
            args={"n": 1, "nested": {"a": [1, 2.5, "x", None, True]}, "unicode": "żółw ✓"},
            queue="reports",
            tenant="acme",
            priority=7,
            max_attempts=5,
            timeout=12.5,
            retry=retry,
            idempotency_key="k-1",
        )
    )
    after = await backend.now()
    assert res.created is True
    job = res.job
    assert job.id
    assert (job.task, job.queue, job.tenant) == ("reports.build", "reports", "acme")
    assert job.args == {"n": 1, "nested": {"a": [1, 2.5, "x", None, True]}, "unicode": "żółw ✓"}
    assert job.state is JobState.QUEUED
    assert (job.priority, job.attempts, job.max_attempts, job.timeout) == (7, 0, 5, 12.5)
    assert job.retry == retry
    assert job.idempotency_key == "k-1"
    assert job.depends_on == []
    assert job.lease_token is None and job.worker_id is None and job.started_at is None
    assert job.finished_at is None and job.result is None and job.error is None
    assert before - 1 <= job.created_at <= after + 1
    assert job.run_at <= after + 1

    stored = await backend.get(job.id)
    assert stored is not None
    assert stored == job


async def test_caller_chosen_id_and_unknown_get(backend: Backend) -> None:
    job = await enqueue(backend, job_id="0190a5e0-0000-7000-8000-00000000abcd")
    assert job.id == "0190a5e0-0000-7000-8000-00000000abcd"
    assert (await backend.get(job.id)) is not None
    assert await backend.get("0190a5e0-0000-7000-8000-00000000ffff") is None


async def test_taken_id_is_refused_and_the_original_kept(backend: Backend) -> None:
    taken = "0190a5e0-0000-7000-8000-00000000beef"
    original = await enqueue(backend, job_id=taken, args={"n": 1})
    with pytest.raises(DuplicateJobId):
        await backend.enqueue(req(job_id=taken, args={"n": 2}))
    with pytest.raises(DuplicateJobId):
        await backend.enqueue_many([req(args={"n": 3}), req(job_id=taken, args={"n": 4})])
    kept = await fetch(backend, taken)
    assert kept.args == original.args == {"n": 1}
    page = await backend.list_jobs(JobFilter(limit=10))
    assert [j.id for j in page.jobs] == [taken], "a refused batch stored some of its jobs"


async def test_get_is_tenant_scoped(backend: Backend) -> None:
    job = await enqueue(backend, tenant="acme")
    assert (await backend.get(job.id, tenant="acme")) is not None
    assert await backend.get(job.id, tenant="globex") is None
    # No tenant means an admin view: every tenant's jobs.
    assert (await backend.get(job.id)) is not None


async def test_ping_now_and_clock_offset(backend: Backend) -> None:
    await backend.ping()
    t0 = await backend.now()
    backend.clock_offset = 3600.0
    t1 = await backend.now()
    assert 3599.0 <= t1 - t0 <= 3700.0


async def test_is_a_backend_with_declared_capabilities(backend: Backend) -> None:
    assert isinstance(backend, Backend)
    assert isinstance(backend.capabilities, frozenset)
    assert all(isinstance(c, Capability) for c in backend.capabilities)


async def test_jobs_survive_closing_and_reopening(backend_url: str, open_backend: OpenBackend) -> None:
    first = await open_backend()
    job = await enqueue(first, args={"keep": True}, idempotency_key="k")
    await first.close()
    second = await open_backend()
    stored = await second.get(job.id)
    assert stored is not None and stored.args == {"keep": True}
    assert (await second.enqueue(req(args={"keep": True}, idempotency_key="k"))).job.id == job.id


async def test_migrate_is_idempotent(backend: Backend) -> None:
    assert await backend.migrate() == []


async def test_concurrent_first_open_migrates_once(backend_url: str, open_backend: OpenBackend) -> None:
    """Several processes starting at once against an empty store must all come up."""
    instances = await asyncio.gather(*(open_backend() for _ in range(4)))
    job = await enqueue(instances[0])
    for other in instances[1:]:
        assert (await other.get(job.id)) is not None
        assert await other.migrate() == []


# -- delays and schedules -----------------------------------------------------------------


async def test_delay_is_never_claimable_early(backend: Backend) -> None:
    now = await backend.now()
    job = await enqueue(backend, delay=100.0)
    assert job.state is JobState.SCHEDULED
    assert now + 99 <= job.run_at <= now + 110
    assert await claim(backend) == []
    backend.clock_offset = 50.0
    assert await claim(backend) == []
    assert await backend.promote_scheduled() == 0
    assert (await fetch(backend, job.id)).state is JobState.SCHEDULED
    backend.clock_offset = 101.0
    claimed = await claim_one(backend)  # due scheduled jobs are claimable without the promoter
    assert claimed.id == job.id
    assert claimed.state is JobState.RUNNING and claimed.attempts == 1


async def test_run_at_absolute(backend: Backend) -> None:
    now = await backend.now()
    past = await enqueue(backend, run_at=now - 10)
    future = await enqueue(backend, run_at=now + 500)
    assert past.state is JobState.QUEUED
    assert future.state is JobState.SCHEDULED
    assert abs(future.run_at - (now + 500)) < 1
    assert [j.id for j in await claim(backend, limit=5)] == [past.id]


async def test_promote_scheduled_moves_only_due_jobs(backend: Backend) -> None:
    soon = await enqueue(backend, delay=10)
    later = await enqueue(backend, delay=1000)
    other_queue = await enqueue(backend, queue="other", delay=10)
    backend.clock_offset = 20.0
    assert await backend.promote_scheduled() == 2
    assert (await fetch(backend, soon.id)).state is JobState.QUEUED
    assert (await fetch(backend, other_queue.id)).state is JobState.QUEUED
    assert (await fetch(backend, later.id)).state is JobState.SCHEDULED
    assert await backend.promote_scheduled() == 0


# -- backpressure -------------------------------------------------------------------------


async def test_max_depth_refuses_with_queue_full(backend: Backend) -> None:
    requires(backend, Capability.DEPENDENCIES)
    parent = await enqueue(backend, queue="side")
    await enqueue(backend, queue="q", max_depth=3)  # queued
    await enqueue(backend, queue="q", delay=100, max_depth=3)  # scheduled
    await enqueue(backend, queue="q", depends_on=(parent.id,), max_depth=3)  # waiting
    with pytest.raises(QueueFull) as info:
        await enqueue(backend, queue="q", max_depth=3)
    assert (info.value.queue, info.value.depth, info.value.limit) == ("q", 3, 3)
    # Other queues are not affected, and no limit means no limit.
    await enqueue(backend, queue="other", max_depth=3)
    await enqueue(backend, queue="q")
    total = await backend.list_jobs(JobFilter(queue="q"))
    assert len(total.jobs) == 4


async def test_running_and_finished_jobs_do_not_count_toward_depth(backend: Backend) -> None:
    await enqueue(backend, queue="q", max_depth=1)
    with pytest.raises(QueueFull):
        await enqueue(backend, queue="q", max_depth=1)
    job = await claim_one(backend, "q")
    await enqueue(backend, queue="q", max_depth=1)  # the running one left room
    assert (await fetch(backend, job.id)).state is JobState.RUNNING


async def test_queue_full_stores_nothing(backend: Backend) -> None:
    await enqueue(backend, queue="q", max_depth=1)
    with pytest.raises(QueueFull):
        await enqueue(backend, queue="q", max_depth=1, idempotency_key="k")
    # The refused key was not remembered: once there is room, the same key makes a job.
    await claim_one(backend, "q")
    res = await backend.enqueue(req(queue="q", max_depth=1, idempotency_key="k"))
    assert res.created is True
    assert len((await backend.list_jobs(JobFilter(queue="q"))).jobs) == 2


# -- enqueue_many -------------------------------------------------------------------------


async def test_enqueue_many_returns_jobs_in_order(backend: Backend) -> None:
    results = await backend.enqueue_many([req(args={"i": i}) for i in range(10)])
    assert [r.job.args["i"] for r in results] == list(range(10))
    assert all(r.created for r in results)
    assert len({r.job.id for r in results}) == 10
    # FIFO holds inside one batch too: claim order is submission order.
    claimed = await claim(backend, limit=10)
    assert [j.args["i"] for j in claimed] == list(range(10))


async def test_enqueue_many_is_atomic_on_bad_dependency(backend: Backend) -> None:
    requires(backend, Capability.DEPENDENCIES)
    batch = [req(args={"i": 0}), req(args={"i": 1}, idempotency_key="k1"), req(depends_on=("no-such-job",))]
    with pytest.raises(DependencyError):
        await backend.enqueue_many(batch)
    assert (await backend.list_jobs(JobFilter())).jobs == []
    assert all(s.counts.get("queued", 0) == 0 for s in await backend.queue_stats())
    # The key of the rolled-back batch was not kept either.
    assert (await backend.enqueue(req(args={"other": True}, idempotency_key="k1"))).created is True


async def test_enqueue_many_is_atomic_on_queue_full(backend: Backend) -> None:
    with pytest.raises(QueueFull):
        await backend.enqueue_many([req(queue="q", max_depth=2, args={"i": i}) for i in range(3)])
    assert (await backend.list_jobs(JobFilter())).jobs == []


async def test_enqueue_many_may_depend_on_an_earlier_job_of_the_batch(backend: Backend) -> None:
    requires(backend, Capability.DEPENDENCIES)
    first_id = "0190a5e0-0000-7000-8000-000000000001"
    results = await backend.enqueue_many([req(job_id=first_id), req(depends_on=(first_id,))])
    assert [r.job.state for r in results] == [JobState.QUEUED, JobState.WAITING]


async def test_enqueue_many_with_a_repeated_key_makes_one_job(backend: Backend) -> None:
    results = await backend.enqueue_many([req(idempotency_key="k"), req(idempotency_key="k")])
    assert [r.created for r in results] == [True, False]
    assert results[0].job.id == results[1].job.id
    with pytest.raises(IdempotencyConflict):
        await backend.enqueue_many([req(idempotency_key="k2"), req(args={"x": 1}, idempotency_key="k2")])
    assert (await backend.enqueue(req(args={"x": 1}, idempotency_key="k2"))).created is True


async def test_enqueue_many_empty(backend: Backend) -> None:
    assert await backend.enqueue_many([]) == []


# -- dependencies at submit ---------------------------------------------------------------


async def test_unknown_or_foreign_dependency_is_refused(backend: Backend) -> None:
    requires(backend, Capability.DEPENDENCIES)
    with pytest.raises(DependencyError):
        await enqueue(backend, depends_on=("0190a5e0-0000-7000-8000-00000000ffff",))
    foreign = await enqueue(backend, tenant="globex")
    with pytest.raises(DependencyError):
        await enqueue(backend, tenant="acme", depends_on=(foreign.id,))
    assert len((await backend.list_jobs(JobFilter())).jobs) == 1


# -- idempotency --------------------------------------------------------------------------


async def test_idempotent_replay_returns_original(backend: Backend) -> None:
    first = await backend.enqueue(req(args={"a": 1, "b": [1, 2]}, idempotency_key="order-42"))
    # Same payload with keys in another order is the same payload.
    again = await backend.enqueue(req(args={"b": [1, 2], "a": 1}, idempotency_key="order-42"))
    assert first.created is True and again.created is False
    assert again.job.id == first.job.id
    assert again.job.args == {"a": 1, "b": [1, 2]}
    assert len((await backend.list_jobs(JobFilter())).jobs) == 1


async def test_replay_returns_the_job_in_its_current_state(backend: Backend) -> None:
    first = await enqueue(backend, idempotency_key="k")
    await claim_one(backend)
    again = await backend.enqueue(req(idempotency_key="k"))
    assert again.created is False
    assert again.job.id == first.id and again.job.state is JobState.RUNNING


async def test_idempotency_conflict_on_different_payload(backend: Backend) -> None:
    first = await enqueue(backend, args={"a": 1}, idempotency_key="k")
    with pytest.raises(IdempotencyConflict) as info:
        await enqueue(backend, args={"a": 2}, idempotency_key="k")
    assert info.value.job_id == first.id
    with pytest.raises(IdempotencyConflict):
        await enqueue(backend, task="other", args={"a": 1}, idempotency_key="k")
    assert len((await backend.list_jobs(JobFilter())).jobs) == 1


async def test_idempotency_keys_are_scoped_by_tenant(backend: Backend) -> None:
    a = await backend.enqueue(req(tenant="acme", idempotency_key="k"))
    b = await backend.enqueue(req(tenant="globex", idempotency_key="k"))
    assert a.created and b.created and a.job.id != b.job.id
    # Different payloads in different tenants are no conflict either.
    await backend.enqueue(req(tenant="initech", args={"x": 1}, idempotency_key="k"))


async def test_idempotency_key_expires_after_ttl(backend: Backend) -> None:
    first = await backend.enqueue(req(idempotency_key="k", idempotency_ttl=60))
    backend.clock_offset = 30.0
    assert (await backend.enqueue(req(idempotency_key="k", idempotency_ttl=60))).job.id == first.job.id
    backend.clock_offset = 61.0
    second = await backend.enqueue(req(args={"new": 1}, idempotency_key="k", idempotency_ttl=60))
    assert second.created is True and second.job.id != first.job.id
    # The key now maps to the new job.
    third = await backend.enqueue(req(args={"new": 1}, idempotency_key="k", idempotency_ttl=60))
    assert third.created is False and third.job.id == second.job.id


async def test_concurrent_duplicate_submits_make_one_job(backend: Backend, open_backend: OpenBackend) -> None:
    instances = [backend, *await asyncio.gather(*(open_backend() for _ in range(19)))]
    request = req(args={"order": 42}, idempotency_key="order-42")
    results = await asyncio.gather(*(b.enqueue(request) for b in instances))
    assert len({r.job.id for r in results}) == 1
    assert sum(r.created for r in results) == 1
    assert len((await backend.list_jobs(JobFilter())).jobs) == 1


async def test_concurrent_conflicting_submits(backend: Backend, open_backend: OpenBackend) -> None:
    """Racing submits with different payloads: one job, every loser gets a conflict."""
    instances = [backend, *await asyncio.gather(*(open_backend() for _ in range(7)))]
    outcomes = await asyncio.gather(
        *(b.enqueue(req(args={"i": i}, idempotency_key="k")) for i, b in enumerate(instances)),
        return_exceptions=True,
    )
    created = [o for o in outcomes if not isinstance(o, BaseException)]
    conflicts = [o for o in outcomes if isinstance(o, IdempotencyConflict)]
    assert len(created) == 1 and created[0].created
    assert len(conflicts) == 7
    assert {c.job_id for c in conflicts} == {created[0].job.id}
