"""Redis-specific behaviour the conformance suite cannot see: key layout, scripts, wake-ups,
server clock, and how the engine behaves while Redis is down."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis
from redis.crc import key_slot

from conveyor.backend.protocol import (
    ClaimRequest,
    CompleteRequest,
    EnqueueRequest,
)
from conveyor.backend.redis.backend import RedisBackend
from conveyor.backend.redis.keys import parse_redis_url
from conveyor.errors import BackendUnavailable, ConfigError
from conveyor.types import Job, JobState
from tests.redis.server import RedisServer, free_port


def req(queue: str = "q", **kw: object) -> EnqueueRequest:
    return EnqueueRequest(task="t", args={"n": 1}, queue=queue, **kw)  # type: ignore[arg-type]


async def claim(b: RedisBackend, queue: str = "q", limit: int = 1, lease: float = 30.0) -> list:
    return await b.claim(ClaimRequest("w", (queue,), limit, lease))


def test_url_options_are_stripped_and_prefix_validated() -> None:
    url, prefix = parse_redis_url("redis://h:6379/2?prefix=app1&socket_keepalive=true")
    assert prefix == "app1" and "prefix" not in url and "socket_keepalive=true" in url
    assert parse_redis_url("redis://h/0")[1] == "conveyor"
    with pytest.raises(ConfigError):
        parse_redis_url("redis://h/0?prefix=a{b}")


async def test_every_key_starts_with_prefix_and_shares_one_cluster_slot(backend: RedisBackend, redis_url: str) -> None:
    parent = (await backend.enqueue(req("a"))).job
    await backend.enqueue(req("b", depends_on=(parent.id,), idempotency_key="k1"))
    await backend.enqueue(req("c", delay=60))
    [job] = await claim(backend, "a")
    await backend.complete(CompleteRequest(job.id, job.lease_token or "", {"ok": True}))
    client = redis.Redis.from_url(parse_redis_url(redis_url)[0])
    keys = [k.decode() for k in client.scan_iter(match="*", count=1000) if k.decode().startswith(backend.prefix)]
    client.close()
    assert len(keys) > 10
    assert {key_slot(k.encode()) for k in keys} == {key_slot(backend.keys.base.encode())}


async def test_scripts_reload_after_script_flush(backend: RedisBackend, redis_url: str) -> None:
    client = redis.Redis.from_url(parse_redis_url(redis_url)[0])
    client.script_flush()
    client.close()
    result = await backend.enqueue(req())
    assert result.created and result.job.state is JobState.QUEUED


async def test_lease_deadline_comes_from_the_redis_clock(backend: RedisBackend) -> None:
    backend.clock_offset = 1000.0
    await backend.enqueue(req())
    [job] = await claim(backend, lease=5)
    server_now = await backend.now()
    assert job.lease_expires_at is not None
    assert server_now - 1 < job.lease_expires_at - 5 <= server_now  # offset applied inside Lua
    assert abs(server_now - 1000.0 - time.time()) < 5  # TIME of the server, not a stale value


async def test_wait_for_work_wakes_on_enqueue_from_another_instance(backend: RedisBackend, redis_url: str) -> None:
    other = RedisBackend(redis_url)
    await other.open()
    try:
        latencies = []
        for _ in range(5):
            waiter = asyncio.create_task(backend.wait_for_work(("q",), timeout=30.0))
            await asyncio.sleep(0.05)  # let the BLPOP reach the server
            sent = time.perf_counter()
            await other.enqueue(req())
            await asyncio.wait_for(waiter, timeout=25.0)  # far below the 30 s wait: it was a wake-up
            latencies.append(time.perf_counter() - sent)
            await claim(backend)
        print(f"wake-up latency after enqueue: max {max(latencies) * 1000:.2f} ms")
    finally:
        await other.close()


async def test_wait_for_work_is_cut_short_by_a_due_scheduled_job(backend: RedisBackend) -> None:
    await backend.enqueue(req(delay=0.3))
    started = time.monotonic()
    claimed: list[Job] = []
    # The enqueue itself wakes sleepers (a new earliest scheduled job); the next wait then ends
    # at the job's due time, never at the 60 s timeout.
    while not claimed:
        await asyncio.wait_for(backend.wait_for_work(("q",), timeout=60.0), timeout=30.0)
        assert time.monotonic() - started < 30.0
        claimed = await claim(backend)
    assert len(claimed) == 1


async def test_concurrent_claimers_never_share_a_job(redis_url: str) -> None:
    instances = [RedisBackend(redis_url) for _ in range(4)]
    for b in instances:
        await b.open()
    try:
        await instances[0].enqueue_many([req() for _ in range(200)])

        async def drain(b: RedisBackend) -> list[str]:
            got: list[str] = []
            while jobs := await claim(b, limit=7):
                got += [j.id for j in jobs]
            return got

        results = await asyncio.gather(*(drain(b) for b in instances))
        ids = [i for r in results for i in r]
        assert len(ids) == 200 and len(set(ids)) == 200
    finally:
        for b in instances:
            await b.close()


async def test_unreachable_redis_raises_backend_unavailable() -> None:
    b = RedisBackend(f"redis://127.0.0.1:{free_port()}/0?prefix=nowhere")
    with pytest.raises(BackendUnavailable):
        await b.open()
    for call in (b.ping(), b.enqueue(req()), b.get("x"), b.claim(ClaimRequest("w", ("q",))), b.now()):
        with pytest.raises(BackendUnavailable):
            await call
    with pytest.raises(BackendUnavailable):
        await b.wait_for_work(("q",), 1.0)
    await b.close()


async def test_reconnects_by_itself_after_a_restart(private_redis: RedisServer) -> None:
    b = RedisBackend(private_redis.url + "?prefix=restart")
    await b.open()
    try:
        job = (await b.enqueue(req())).job
        private_redis.kill()
        with pytest.raises(BackendUnavailable):
            await b.get(job.id)
        with pytest.raises(BackendUnavailable):
            await b.enqueue(req())
        private_redis.start()
        # The very next call after Redis is back works, on a fresh connection.
        again = await b.get(job.id)
        assert again is not None and again.state is JobState.QUEUED  # AOF always: it survived
        assert (await b.enqueue(req())).created
        assert len(await claim(b, limit=10)) == 2
    finally:
        await b.close()


async def test_cancel_of_a_diamond_cancels_each_dependent_once(backend: RedisBackend) -> None:
    """C waits on A and on B1..B5, each B waits on A: canceling A cancels C exactly once.

    Found by the stateful test: a walk that checked "waiting" when it found a dependent instead
    of when it visited it canceled C once per path (and broke the per-state counters).
    """
    from conveyor.backend.protocol import CancelRequest, EventsRequest

    a = (await backend.enqueue(req(job_id="a"))).job
    bs = [(await backend.enqueue(req(job_id=f"b{i}", depends_on=("a",)))).job for i in range(5)]
    c = (await backend.enqueue(req(job_id="c", depends_on=("a", *(b.id for b in bs))))).job
    await backend.cancel(CancelRequest(a.id))
    for job in (a, *bs, c):
        history = await backend.events(EventsRequest(job.id))
        assert [e.state for e in history].count(JobState.CANCELED) == 1, job.id
    [stats] = await backend.queue_stats()
    assert stats.counts["canceled"] == 7 and stats.pending == 0
