"""Limits enforced by the engine (conveyor.limits): per-key concurrency and start rate in the
claim, unique keys in the enqueue. Racing claimers run on separate instances (own connections).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from conveyor.backend import Backend
from conveyor.backend.protocol import (
    CancelRequest,
    ClaimRequest,
    CompleteRequest,
    EnqueueRequest,
    FailRequest,
    JobFilter,
)
from conveyor.errors import ConfigError
from conveyor.reaper import reap_expired
from conveyor.types import Job, JobState
from tests.conformance.conftest import OpenBackend, claim, claim_one, enqueue, fetch, req
from tests.faults.helpers import WorkerNode

DEADLINE = 60.0


async def eventually(condition: Callable[[], Awaitable[object]], message: str, timeout: float = DEADLINE) -> object:
    """Poll ``condition`` until it is truthy; fail the test at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = await condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {message}")
        await asyncio.sleep(0.05)


def limited(key: str, n: int, **kw: object) -> EnqueueRequest:
    return req(concurrency_key=key, concurrency_limit=n, **kw)  # type: ignore[arg-type]


def rated(key: str, n: int, period: float, **kw: object) -> EnqueueRequest:
    return req(rate_key=key, rate_limit=n, rate_period=period, **kw)  # type: ignore[arg-type]


async def running_per_key(backend: Backend) -> Counter[str]:
    page = await backend.list_jobs(JobFilter(states=(JobState.RUNNING,), limit=10_000))
    return Counter(j.concurrency_key for j in page.jobs if j.concurrency_key is not None)


async def complete(backend: Backend, job: Job) -> None:
    assert await backend.complete(CompleteRequest(job.id, job.lease_token or "", None))


# -- concurrency ------------------------------------------------------------------------------


async def test_limited_jobs_carry_their_limits(backend: Backend) -> None:
    job = (await backend.enqueue(limited("tenant:acme", 5, args={"x": 1}))).job
    again = await fetch(backend, job.id)
    assert (again.concurrency_key, again.concurrency_limit) == ("tenant:acme", 5)
    assert (again.rate_key, again.rate_limit, again.rate_period, again.unique_key) == (None, None, None, None)
    rate = (await backend.enqueue(rated("smtp", 100, 60.0))).job
    assert (rate.rate_key, rate.rate_limit, rate.rate_period) == ("smtp", 100, 60.0)
    claimed = await claim_one(backend)
    assert claimed.id == job.id and claimed.concurrency_key == "tenant:acme"


async def test_a_held_back_job_never_blocks_the_jobs_behind_it(backend: Backend) -> None:
    """The head of the queue is all one key (limit 1, high priority); the claim skips them."""
    await backend.enqueue_many([limited("printer:7", 1, priority=10, args={"i": i}) for i in range(30)])
    plain = await enqueue(backend, args={"plain": True})
    other = (await backend.enqueue(limited("printer:8", 1))).job
    first = await claim(backend, limit=10)
    assert {j.concurrency_key for j in first} == {"printer:7", "printer:8", None}
    assert len(first) == 3 and plain.id in {j.id for j in first} and other.id in {j.id for j in first}
    assert await claim(backend, limit=10) == []
    held = (await backend.list_jobs(JobFilter(states=(JobState.QUEUED,), limit=100))).jobs
    assert len(held) == 29
    assert all(j.attempts == 0 for j in held), "a job held back by its limit is not charged an attempt"


async def test_a_freed_slot_is_claimable_at_once(backend: Backend) -> None:
    await backend.enqueue_many([limited("tenant:acme", 2, args={"i": i}) for i in range(5)])
    first = await claim(backend, limit=5)
    assert len(first) == 2
    assert await claim(backend, limit=5) == []
    await complete(backend, first[0])
    nxt = await claim(backend, limit=5)
    assert len(nxt) == 1 and nxt[0].attempts == 1
    # failing and canceling free the slot too
    assert await backend.claim(ClaimRequest("w", ("default",), 5)) == []
    await backend.fail(FailRequest(first[1].id, first[1].lease_token or "", {"message": "x"}, JobState.FAILED))
    again = await claim(backend, limit=5)
    assert len(again) == 1
    await backend.cancel(CancelRequest(again[0].id))
    assert len(await claim(backend, limit=5)) == 1


async def test_the_limit_counts_jobs_of_the_key_on_every_queue(backend: Backend) -> None:
    await backend.enqueue(limited("tenant:acme", 1, queue="a"))
    await backend.enqueue(limited("tenant:acme", 1, queue="b"))
    assert len(await claim(backend, "a")) == 1
    assert await claim(backend, "b") == []
    both = await backend.claim(ClaimRequest("w", ("a", "b"), limit=5))
    assert both == []


async def test_racing_claimers_never_exceed_the_limit_per_key(backend: Backend, open_backend: OpenBackend) -> None:
    """8 instances claim concurrently for many rounds; between rounds some running jobs end.
    After every round, the engine has at most N running jobs per key (and every job ends)."""
    claimers = [backend, *await asyncio.gather(*(open_backend() for _ in range(7)))]
    limits = {"tenant:a": 1, "tenant:b": 2, "tenant:c": 3}
    requests = [limited(key, n, args={"i": i}) for key, n in limits.items() for i in range(12)]
    requests += [req(args={"plain": i}) for i in range(10)]
    random.Random(7).shuffle(requests)
    await backend.enqueue_many(requests)
    rng = random.Random(11)
    running: list[Job] = []
    done = 0
    for round_ in range(200):
        results = await asyncio.gather(
            *(c.claim(ClaimRequest(f"w{n}", ("default",), limit=3, lease_seconds=60)) for n, c in enumerate(claimers))
        )
        got = [j for jobs in results for j in jobs]
        assert len({j.id for j in got}) == len(got), "a job was handed to two claimers"
        running += got
        per_key = Counter(j.concurrency_key for j in running if j.concurrency_key)
        assert all(per_key[k] <= n for k, n in limits.items()), (round_, per_key)
        assert await running_per_key(backend) == per_key
        if not running and done == len(requests):
            break
        # end a random part of the running jobs, concurrently, on random instances
        ending = [j for j in running if rng.random() < 0.5]
        await asyncio.gather(*(complete(rng.choice(claimers), j) for j in ending))
        running = [j for j in running if j not in ending]
        done += len(ending)
    assert done == len(requests)


async def eventually_reaped(backend: Backend, job_id: str) -> None:
    async def reaped() -> bool:
        await reap_expired(backend)
        return (await fetch(backend, job_id)).state is JobState.QUEUED

    await eventually(reaped, f"the lease of {job_id} to expire and the reaper to take it back")


async def test_a_crashed_holders_slot_comes_back_when_its_lease_expires(
    backend: Backend, backend_url: str, tmp_path: Path
) -> None:
    """A real worker node runs the printer's only slot and is SIGKILLed mid-job: the second job
    of the printer stays held (no claimer gets it) until the lease expires and the reaper moves
    the dead holder's job back to queued; then exactly one of them runs."""
    node = WorkerNode(
        backend_url,
        tmp_path / "logs",
        app="tests.apps.limits_app:app",
        queues="printers",
        concurrency=2,
        lease=1.0,
        heartbeat=0.3,
    )
    key = dict(concurrency_key="printer:7", concurrency_limit=1, queue="printers", task="limits.print_job")
    first = (await backend.enqueue(req(args={"printer": 7, "seconds": 600}, **key))).job  # type: ignore[arg-type]
    node.start()
    try:

        async def running() -> bool:
            return (await fetch(backend, first.id)).state is JobState.RUNNING

        await eventually(running, "the node to start the first print job")
        second = (await backend.enqueue(req(args={"printer": 7, "seconds": 0}, **key))).job  # type: ignore[arg-type]
        assert await claim(backend, "printers", limit=5) == [], "the printer's slot is taken"
        node.kill()
        assert await claim(backend, "printers", limit=5) == [], "a dead holder keeps its slot until its lease ends"
        await eventually_reaped(backend, first.id)
        got = await claim(backend, "printers", limit=5)
        assert len(got) == 1 and got[0].id in (first.id, second.id)
        assert await claim(backend, "printers", limit=5) == []
        assert (await fetch(backend, second.id)).attempts == (0 if got[0].id == first.id else 1)
    finally:
        node.close()


# -- rate -------------------------------------------------------------------------------------


def assert_no_window_over(starts: list[float], limit: int, period: float) -> None:
    """No half-open window of ``period`` seconds holds more than ``limit`` of the start times."""
    s = sorted(starts)
    over = [(s[i], s[i + limit]) for i in range(len(s) - limit) if s[i + limit] - s[i] < period]
    assert over == [], f"more than {limit} starts within {period} s: {over[:3]}"


async def test_rate_limit_holds_jobs_until_the_window_allows(backend: Backend) -> None:
    await backend.enqueue_many([rated("smtp", 3, 10.0, args={"i": i}) for i in range(7)])
    plain = await enqueue(backend, args={"plain": True})
    first = await claim(backend, limit=10)
    assert len([j for j in first if j.rate_key]) == 3 and plain.id in {j.id for j in first}
    assert await claim(backend, limit=10) == []
    held = (await backend.list_jobs(JobFilter(states=(JobState.QUEUED,)))).jobs
    assert len(held) == 4 and all(j.attempts == 0 for j in held)
    backend.clock_offset = 9.0  # the window has not passed yet
    assert await claim(backend, limit=10) == []
    backend.clock_offset = 10.5
    second = await claim(backend, limit=10)
    assert len(second) == 3 and all(j.attempts == 1 for j in second)
    backend.clock_offset = 21.0
    assert len(await claim(backend, limit=10)) == 1


async def test_racing_claimers_never_exceed_the_rate(backend: Backend, open_backend: OpenBackend) -> None:
    """8 instances claim concurrently while the engine clock moves a quarter period per round:
    every job starts, and no window of the period holds more than N starts of a key."""
    claimers = [backend, *await asyncio.gather(*(open_backend() for _ in range(7)))]
    period, n = 8.0, 3
    requests = [rated(key, n, period, args={"i": i}) for key in ("api:a", "api:b") for i in range(15)]
    requests += [req(args={"plain": i}) for i in range(5)]
    await backend.enqueue_many(requests)
    started: list[Job] = []
    for round_ in range(200):
        for c in claimers:
            c.clock_offset = round_ * period / 4
        results = await asyncio.gather(
            *(c.claim(ClaimRequest(f"w{i}", ("default",), limit=4, lease_seconds=600)) for i, c in enumerate(claimers))
        )
        started += [j for jobs in results for j in jobs]
        if len(started) == len(requests):
            break
    assert len({j.id for j in started}) == len(requests), "every job starts, once"
    for key in ("api:a", "api:b"):
        starts = [j.started_at or 0.0 for j in started if j.rate_key == key]
        assert len(starts) == 15
        assert_no_window_over(starts, n, period)
    assert all(j.attempts == 1 for j in started), "waiting for the window charged no attempt"


# -- unique jobs ------------------------------------------------------------------------------


async def test_a_unique_job_is_returned_while_pending_or_running(backend: Backend) -> None:
    first = await backend.enqueue(req(unique_key="report:42", args={"v": 1}))
    assert first.created
    dup = await backend.enqueue(req(unique_key="report:42", args={"v": 2}))
    assert not dup.created and dup.job.id == first.job.id and dup.job.args == {"v": 1}
    job = await claim_one(backend)
    dup = await backend.enqueue(req(unique_key="report:42"))
    assert not dup.created and dup.job.id == job.id and dup.job.state is JobState.RUNNING
    other_tenant = await backend.enqueue(req(unique_key="report:42", tenant="other"))
    assert other_tenant.created
    other_key = await backend.enqueue(req(unique_key="report:43"))
    assert other_key.created
    await complete(backend, job)
    after = await backend.enqueue(req(unique_key="report:42", args={"v": 3}))
    assert after.created and after.job.id != job.id and after.job.unique_key == "report:42"


async def test_unique_keys_in_one_batch_make_one_job(backend: Backend) -> None:
    results = await backend.enqueue_many([req(unique_key="sync:users", args={"i": i}) for i in range(4)])
    assert [r.created for r in results] == [True, False, False, False]
    assert len({r.job.id for r in results}) == 1


async def test_concurrent_duplicate_unique_submits_make_one_job(backend: Backend, open_backend: OpenBackend) -> None:
    instances = [backend, *await asyncio.gather(*(open_backend() for _ in range(7)))]
    for round_ in range(5):
        key = f"import:{round_}"
        results = await asyncio.gather(
            *(b.enqueue(req(unique_key=key, args={"by": i})) for i, b in enumerate(instances))
        )
        assert sum(r.created for r in results) == 1, results
        assert len({r.job.id for r in results}) == 1
    page = await backend.list_jobs(JobFilter(limit=100))
    assert len(page.jobs) == 5


async def test_an_ended_unique_job_frees_its_key(backend: Backend) -> None:
    first = (await backend.enqueue(req(unique_key="k"))).job
    await backend.cancel(CancelRequest(first.id))
    second = await backend.enqueue(req(unique_key="k"))
    assert second.created and second.job.id != first.id


# -- bad settings -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        {"concurrency_key": "k"},
        {"concurrency_limit": 2},
        {"concurrency_key": "k", "concurrency_limit": 0},
        {"rate_key": "k", "rate_limit": 5},
        {"rate_key": "k", "rate_limit": 5, "rate_period": 0.0},
        {"unique_key": ""},
    ],
)
def test_half_declared_limits_are_refused(fields: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        EnqueueRequest(task="t", args={}, **fields)  # type: ignore[arg-type]
