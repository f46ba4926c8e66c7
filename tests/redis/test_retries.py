"""A script call whose reply was lost is sent again (same call id, retry flag): it must answer
exactly as the first send did and never apply anything twice (scripts.SCRIPTS declares how
each script is made safe to redo).

The per-script matrix drives the public backend methods while the first send's reply is
thrown away after Redis ran the script (the wrapper raises the ConnectionError redis-py
raises when a connection drops), so the real retry path of ``RedisBackend._script`` runs. One
test loses a reply on a real TCP connection, cut by a proxy right after Redis answered.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from redis import exceptions as rexc

from conveyor.backend.protocol import (
    ArtifactRequest,
    CancelRequest,
    ClaimRequest,
    CompleteRequest,
    EffectOutcome,
    EffectRequest,
    EnqueueRequest,
    EventsRequest,
    FailRequest,
    HeartbeatRequest,
    Lease,
    PauseRequest,
    ProgressRequest,
    PruneRequest,
    RedriveRequest,
    ReleaseRequest,
)
from conveyor.backend.redis.backend import RedisBackend
from conveyor.backend.redis.scripts import SCRIPTS, RetrySafety, script_source
from conveyor.reaper import reap_expired
from conveyor.types import Artifact, Job, JobState

# -- helpers ------------------------------------------------------------------------------


class LoseFirstReply:
    """Stands in for one registered script: runs it for real, but the first reply is 'lost'."""

    def __init__(self, script: Any) -> None:
        self.script = script
        self.argv: list[list[Any]] = []
        self.replies: list[Any] = []

    async def __call__(self, keys: Any = None, args: Any = None, client: Any = None) -> Any:
        reply = await self.script(keys=keys, args=args, client=client)
        self.argv.append(list(args))
        self.replies.append(reply)
        if len(self.replies) == 1:
            raise rexc.ConnectionError("connection lost before the reply was read")
        return reply


@contextlib.contextmanager
def lose_first_reply(backend: RedisBackend, name: str) -> Iterator[LoseFirstReply]:
    """Within the block, the first call of script ``name`` loses its reply; check the retry after."""
    backend._ensure_client()
    wrapper = LoseFirstReply(backend._scripts[name])
    backend._scripts[name] = wrapper
    try:
        yield wrapper
    finally:
        backend._scripts[name] = wrapper.script
    assert len(wrapper.replies) == 2, "the call must have been sent twice"
    first, retry = wrapper.argv
    assert first[1][:1] == "0" and retry[1][:1] == "1", "the second send is flagged as a retry"
    assert first[1][1:] == retry[1][1:], "both sends carry the same call id"
    assert first[2:] == retry[2:]
    assert wrapper.replies[0] == wrapper.replies[1], "the retry answers exactly as the first send"


def req(queue: str = "q", **kw: Any) -> EnqueueRequest:
    return EnqueueRequest(task="t", args={"n": 1}, queue=queue, **kw)


async def enqueue(b: RedisBackend, **kw: Any) -> Job:
    return (await b.enqueue(req(**kw))).job


async def claim(b: RedisBackend, limit: int = 1, lease: float = 30.0) -> list[Job]:
    return await b.claim(ClaimRequest("w", ("q",), limit, lease))


async def history(b: RedisBackend, job: Job) -> list[tuple[str, str]]:
    return [(e.type, e.state.value) for e in await b.events(EventsRequest(job.id))]


async def counts(b: RedisBackend) -> dict[str, int]:
    [stats] = await b.queue_stats()
    return {state: n for state, n in stats.counts.items() if n}


# -- the declaration ------------------------------------------------------------------------


def test_every_script_declares_its_retry_safety() -> None:
    state_changing = {
        "enqueue", "claim", "complete", "complete_many", "fail", "release", "progress", "artifact",
        "cancel", "redrive", "expire", "promote", "prune", "effect", "outbox_take", "move",
    }  # fmt: skip
    assert {n for n, s in SCRIPTS.items() if s is RetrySafety.REPLY} == state_changing
    assert {n for n, s in SCRIPTS.items() if s is RetrySafety.IDEMPOTENT} == {
        "heartbeat",
        "pause",
        "apikey",
        "outbox_ack",
        "checkpoint",
        "workers",
    }
    for name in SCRIPTS:
        assert ("return replied(main)" in script_source(name)) == (SCRIPTS[name] is RetrySafety.REPLY)


# -- the per-script matrix ------------------------------------------------------------------


async def test_enqueue(backend: RedisBackend) -> None:
    with lose_first_reply(backend, "enqueue"):
        results = await backend.enqueue_many([req(), req(idempotency_key="k")])
    assert [r.created for r in results] == [True, True]
    for r in results:
        assert await history(backend, r.job) == [("enqueued", "queued")]
    assert await counts(backend) == {"queued": 2}
    again = await backend.enqueue(req(idempotency_key="k"))
    assert not again.created and again.job.id == results[1].job.id


async def test_claim(backend: RedisBackend) -> None:
    for _ in range(3):
        await enqueue(backend)
    with lose_first_reply(backend, "claim"):
        jobs = await claim(backend, limit=2)
    assert len(jobs) == 2 and all(j.attempts == 1 and j.state is JobState.RUNNING for j in jobs)
    for job in jobs:
        assert await history(backend, job) == [("enqueued", "queued"), ("state", "running")]
    assert await counts(backend) == {"running": 2, "queued": 1}


async def test_complete_releases_dependents_once(backend: RedisBackend) -> None:
    p1, p2 = await enqueue(backend), await enqueue(backend)
    child = await enqueue(backend, depends_on=(p1.id, p2.id))
    [running, _] = await claim(backend, limit=2)
    with lose_first_reply(backend, "complete"):
        assert await backend.complete(CompleteRequest(running.id, running.lease_token or "", {"ok": 1}))
    assert (await history(backend, running))[-1] == ("state", "succeeded")
    assert len(await history(backend, running)) == 3
    assert (await backend.get(child.id)).state is JobState.WAITING  # type: ignore[union-attr]
    assert await counts(backend) == {"succeeded": 1, "running": 1, "waiting": 1}


async def test_complete_many(backend: RedisBackend) -> None:
    for _ in range(2):
        await enqueue(backend)
    jobs = await claim(backend, limit=2)
    reqs = [CompleteRequest(j.id, j.lease_token or "", i) for i, j in enumerate(jobs)] + [
        CompleteRequest(jobs[0].id, "stale-token")
    ]
    with lose_first_reply(backend, "complete_many"):
        assert await backend.complete_many(reqs) == [True, True, False]
    for job in jobs:
        assert [e for e in await history(backend, job) if e[1] == "succeeded"] == [("state", "succeeded")]
    assert await counts(backend) == {"succeeded": 2}


@pytest.mark.parametrize(("delay", "state"), [(5.0, JobState.SCHEDULED), (None, JobState.FAILED)])
async def test_fail(backend: RedisBackend, delay: float | None, state: JobState) -> None:
    await enqueue(backend)
    [job] = await claim(backend)
    with lose_first_reply(backend, "fail"):
        assert (
            await backend.fail(FailRequest(job.id, job.lease_token or "", {"type": "X"}, state, delay or 0.0)) is state
        )
    assert (await history(backend, job))[2:] == [("state", state.value)]
    assert await counts(backend) == {state.value: 1}


async def test_release(backend: RedisBackend) -> None:
    await enqueue(backend)
    [job] = await claim(backend)
    with lose_first_reply(backend, "release"):
        assert await backend.release(ReleaseRequest(job.id, job.lease_token or ""))
    assert (await history(backend, job))[2:] == [("state", "queued")]
    assert (await backend.get(job.id)).attempts == 0  # type: ignore[union-attr]
    assert await counts(backend) == {"queued": 1}


async def test_progress(backend: RedisBackend) -> None:
    await enqueue(backend)
    [job] = await claim(backend)
    with lose_first_reply(backend, "progress"):
        assert await backend.progress(ProgressRequest(job.id, job.lease_token or "", 0.5, "half"))
    assert (await history(backend, job))[2:] == [("progress", "running")]


async def test_artifact(backend: RedisBackend) -> None:
    await enqueue(backend)
    [job] = await claim(backend)
    artifact = Artifact(name="out.txt", size=3, content_type="text/plain", location="file:///tmp/out.txt")
    with lose_first_reply(backend, "artifact"):
        assert await backend.add_artifact(ArtifactRequest(job.id, job.lease_token or "", artifact))
    assert (await history(backend, job))[2:] == [("artifact", "running")]
    assert [a.name for a in (await backend.get(job.id)).artifacts] == ["out.txt"]  # type: ignore[union-attr]


async def test_cancel(backend: RedisBackend) -> None:
    parent = await enqueue(backend)
    child = await enqueue(backend, depends_on=(parent.id,))
    with lose_first_reply(backend, "cancel"):
        canceled = await backend.cancel(CancelRequest(parent.id))  # not InvalidTransition on the retry
    assert canceled.state is JobState.CANCELED
    assert await history(backend, parent) == [("enqueued", "queued"), ("state", "canceled")]
    assert await history(backend, child) == [("enqueued", "waiting"), ("state", "canceled")]
    assert await counts(backend) == {"canceled": 2}


async def test_redrive(backend: RedisBackend) -> None:
    for _ in range(2):
        await enqueue(backend)
    for job in await claim(backend, limit=2):
        await backend.fail(FailRequest(job.id, job.lease_token or "", {"type": "X"}, JobState.FAILED))
    with lose_first_reply(backend, "redrive"):
        assert await backend.redrive(RedriveRequest(queue="q")) == 2  # not 0 on the retry
    assert await counts(backend) == {"queued": 2}


async def test_expire(backend: RedisBackend) -> None:
    await enqueue(backend)
    [job] = await claim(backend, lease=1.0)
    backend.clock_offset = 60
    with lose_first_reply(backend, "expire"):
        assert await reap_expired(backend) == [job.id]  # not [] on the retry
    assert (await history(backend, job))[2:] == [("state", "queued")]
    assert await counts(backend) == {"queued": 1}


async def test_promote(backend: RedisBackend) -> None:
    await enqueue(backend, delay=5)
    backend.clock_offset = 60
    with lose_first_reply(backend, "promote"):
        assert await backend.promote_scheduled() == 1
    assert await counts(backend) == {"queued": 1}


async def test_prune(backend: RedisBackend) -> None:
    await enqueue(backend)
    [job] = await claim(backend)
    await backend.complete(CompleteRequest(job.id, job.lease_token or ""))
    backend.clock_offset = 3600
    with lose_first_reply(backend, "prune"):
        assert await backend.prune(PruneRequest(older_than=60)) == 1
    assert await backend.get(job.id) is None


async def test_effect(backend: RedisBackend) -> None:
    await enqueue(backend)
    [job] = await claim(backend)
    with lose_first_reply(backend, "effect"):
        outcome = await backend.record_effect(EffectRequest(job.id, job.lease_token or "", "charge", {"id": 1}))
    assert outcome is EffectOutcome.RECORDED  # not "exists": the retry saw its own record
    assert await backend.get_effect(job.id, "charge") == (True, {"id": 1})


async def test_idempotent_scripts_are_simply_redone(backend: RedisBackend) -> None:
    await enqueue(backend)
    [job] = await claim(backend)
    with lose_first_reply(backend, "heartbeat"):
        assert await backend.heartbeat(HeartbeatRequest((Lease(job.id, job.lease_token or ""),))) == {job.id: "ok"}
    with lose_first_reply(backend, "pause"):
        await backend.set_paused(PauseRequest("q", True))
    assert (await backend.queue_stats())[0].paused


# -- the raw protocol -----------------------------------------------------------------------


async def test_a_first_send_that_runs_after_its_retry_applies_nothing(backend: RedisBackend) -> None:
    """After a socket timeout the first send may still run, late: it answers from the stored reply."""
    await enqueue(backend)
    [job] = await claim(backend)
    backend._ensure_client()
    script = backend._scripts["progress"]
    argv = [job.id, job.lease_token, "=0.5", "", '{"fraction":0.5,"message":null}']
    base = [backend.keys.base]
    assert await script(keys=base, args=["0", "1call-1", *argv]) == 1  # the retry, first to arrive
    assert await script(keys=base, args=["0", "0call-1", *argv]) == 1  # the late first send
    assert await script(keys=base, args=["0", "0call-2", *argv]) == 1  # a new call does apply
    assert (await history(backend, job))[2:] == [("progress", "running")] * 2


async def test_a_stored_reply_expires(backend: RedisBackend) -> None:
    await enqueue(backend)
    [job] = await claim(backend)
    backend._ensure_client()
    argv = ["0", "0call-x", job.id, job.lease_token, "=0.5", "", "{}"]
    await backend._scripts["progress"](keys=[backend.keys.base], args=argv)
    ttl = await backend._command("PTTL", f"{backend.keys.base}:reply:call-x")
    assert 0 < ttl <= 60_000


async def test_a_stored_reply_keeps_job_hashes_as_ids(backend: RedisBackend) -> None:
    big = {"blob": "x" * 20_000}
    await backend.enqueue(EnqueueRequest(task="t", args=big, queue="q"))
    [job] = await claim(backend)
    assert job.args == big
    keys = await backend._command("KEYS", f"{backend.keys.base}:reply:*")
    assert len(keys) == 2  # the enqueue's and the claim's
    for key in keys:
        assert await backend._command("STRLEN", key) < 200


async def test_an_empty_claim_stores_no_reply(backend: RedisBackend) -> None:
    assert await claim(backend) == []
    assert await backend._command("KEYS", f"{backend.keys.base}:reply:*") == []


# -- a real lost reply ----------------------------------------------------------------------


class ReplyCutter:
    """A TCP proxy in front of Redis that can cut a connection right after Redis answered,
    before the client reads the answer: the call ran, its reply is lost."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.cut_next_reply = False
        self.cuts = 0
        self.server: asyncio.base_events.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection(*self.target)

        async def upstream() -> None:
            while data := await client_r.read(65536):
                server_w.write(data)
                await server_w.drain()

        async def downstream() -> None:
            while data := await server_r.read(65536):
                if self.cut_next_reply:
                    self.cut_next_reply = False
                    self.cuts += 1
                    return
                client_w.write(data)
                await client_w.drain()

        tasks = [asyncio.create_task(upstream()), asyncio.create_task(downstream())]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            task.cancel()
        for writer in (client_w, server_w):
            writer.close()


@pytest.fixture
async def proxied(redis_url: str) -> AsyncIterator[tuple[RedisBackend, ReplyCutter]]:
    parts = urlsplit(redis_url)
    cutter = ReplyCutter(parts.hostname or "127.0.0.1", parts.port or 6379)
    port = await cutter.start()
    b = RedisBackend(urlunsplit(parts._replace(netloc=f"127.0.0.1:{port}")))
    await b.open()
    yield b, cutter
    await b.close()
    await cutter.close()


async def test_a_reply_lost_on_a_real_connection_is_answered_by_the_retry(
    proxied: tuple[RedisBackend, ReplyCutter],
) -> None:
    backend, cutter = proxied
    await enqueue(backend)
    [job] = await claim(backend)
    lease = job.lease_token or ""
    assert await backend.progress(ProgressRequest(job.id, lease, 0.1))  # the script is loaded
    cutter.cut_next_reply = True
    assert await backend.progress(ProgressRequest(job.id, lease, 0.5, "half"))
    assert cutter.cuts == 1
    assert (await history(backend, job))[2:] == [("progress", "running")] * 2  # not three
    cutter.cut_next_reply = True
    assert await backend.complete(CompleteRequest(job.id, lease, {"ok": True}))  # not fenced by its own first send
    assert cutter.cuts == 2
    assert (await history(backend, job))[-1] == ("state", "succeeded")
    assert len(await history(backend, job)) == 5
