"""Hypothesis stateful test: random operation sequences run on Redis and on the SQLite
reference engine side by side must give the same answers, the same job states and the same
history; after every step Redis' counters and indexes must agree with its job hashes.

Job ids are given explicitly and increase, so "run_at then id" ordering ties break the same
way on both engines; time moves only by clock_offset jumps far larger than any race.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import uuid
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest
import redis
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from conveyor.backend.protocol import (
    CancelRequest,
    ClaimRequest,
    CompleteRequest,
    EnqueueRequest,
    EventsRequest,
    FailRequest,
    HeartbeatRequest,
    Lease,
    RedriveRequest,
    ReleaseRequest,
)
from conveyor.backend.redis.backend import RedisBackend
from conveyor.backend.redis.keys import parse_redis_url
from conveyor.backend.sqlite.backend import SQLiteBackend
from conveyor.errors import ConveyorError
from conveyor.reaper import reap_expired
from conveyor.types import JobState
from tests.engines import REDIS_URL, _reachable, unavailable

T = TypeVar("T")
QUEUES = ("a", "b")


class RedisAgreesWithSQLite(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.tmp = Path(tempfile.mkdtemp(prefix="conveyor-stateful-"))
        self.prefix = f"conveyor-st-{uuid.uuid4().hex[:10]}"
        self.ref = SQLiteBackend(f"sqlite:///{self.tmp / 'ref.db'}")
        self.red = RedisBackend(f"{REDIS_URL}?prefix={self.prefix}")
        self.run(self.ref.open())
        self.run(self.red.open())
        self.ids: list[str] = []
        self.tokens: dict[str, tuple[str, str]] = {}  # job id -> (sqlite token, redis token)
        self.stale: dict[str, tuple[str, str]] = {}
        self.offset = 0.0

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    def both(self, make: Any) -> tuple[Any, Any]:
        """Run ``make(backend)`` on each engine; an error counts as its type name."""
        out = []
        for b in (self.ref, self.red):
            try:
                out.append(self.run(make(b)))
            except ConveyorError as exc:
                out.append(type(exc).__name__)
        return out[0], out[1]

    def teardown(self) -> None:
        try:
            for job_id in self.ids:
                ref_ev, red_ev = self.both(lambda b, j=job_id: b.events(EventsRequest(j)))
                assert [(e.type, e.state) for e in ref_ev] == [(e.type, e.state) for e in red_ev], job_id
        finally:
            self.run(self.ref.close())
            self.run(self.red.close())
            self.loop.close()
            shutil.rmtree(self.tmp, ignore_errors=True)
            client = redis.Redis.from_url(parse_redis_url(REDIS_URL)[0])
            keys = list(client.scan_iter(match=f"{self.prefix}*", count=1000))
            if keys:
                client.delete(*keys)
            client.close()

    # -- rules --------------------------------------------------------------------------------

    @rule(
        queue=st.sampled_from(QUEUES),
        priority=st.integers(0, 2),
        delayed=st.booleans(),
        n_deps=st.integers(0, 2),
        key=st.sampled_from([None, None, "k1", "k2"]),
        arg=st.integers(0, 1),
    )
    def enqueue(self, queue: str, priority: int, delayed: bool, n_deps: int, key: str | None, arg: int) -> None:
        job_id = f"job-{len(self.ids):06d}"
        deps = tuple(self.ids[-n_deps:]) if n_deps else ()
        request = EnqueueRequest(
            task="t",
            args={"n": arg},
            queue=queue,
            priority=priority,
            delay=3600.0 if delayed else None,
            depends_on=deps,
            idempotency_key=key,
            job_id=job_id,
            max_attempts=2,
        )
        ref, red = self.both(lambda b: b.enqueue(request))
        if isinstance(ref, str):
            assert ref == red
            return
        assert not isinstance(red, str), red
        assert (ref.created, ref.job.id, ref.job.state) == (red.created, red.job.id, red.job.state)
        if ref.created:
            self.ids.append(job_id)

    @rule(queues=st.sampled_from([("a",), ("b",), ("a", "b")]), limit=st.integers(1, 3))
    def claim(self, queues: tuple[str, ...], limit: int) -> None:
        ref, red = self.both(lambda b: b.claim(ClaimRequest("w", queues, limit, 30.0)))
        assert [j.id for j in ref] == [j.id for j in red]
        for a, b in zip(ref, red, strict=True):
            assert a.attempts == b.attempts
            if a.id in self.tokens:
                self.stale[a.id] = self.tokens[a.id]
            self.tokens[a.id] = (a.lease_token, b.lease_token)

    def _lease(self, pick: int) -> tuple[str, str, str]:
        job_id = sorted(self.tokens)[pick % len(self.tokens)]
        return job_id, *self.tokens[job_id]

    @precondition(lambda self: self.tokens)
    @rule(pick=st.integers(0, 50), action=st.sampled_from(["complete", "retry", "dead", "release"]))
    def finish(self, pick: int, action: str) -> None:
        job_id, t_ref, t_red = self._lease(pick)
        tokens = {id(self.ref): t_ref, id(self.red): t_red}

        def call(b: Any) -> Any:
            token = tokens[id(b)]
            if action == "complete":
                return b.complete(CompleteRequest(job_id, token, {"done": job_id}))
            if action == "release":
                return b.release(ReleaseRequest(job_id, token))
            state = JobState.SCHEDULED if action == "retry" else JobState.FAILED
            return b.fail(FailRequest(job_id, token, {"type": "Boom"}, state, 5.0))

        ref, red = self.both(call)
        assert ref == red

    @precondition(lambda self: self.stale or self.tokens)
    @rule(pick=st.integers(0, 50), use_stale=st.booleans())
    def heartbeat(self, pick: int, use_stale: bool) -> None:
        pool = self.stale if use_stale and self.stale else self.tokens
        job_id = sorted(pool)[pick % len(pool)]
        t_ref, t_red = pool[job_id]
        ref, red = self.both(
            lambda b: b.heartbeat(HeartbeatRequest((Lease(job_id, t_ref if b is self.ref else t_red),), 30.0))
        )
        assert ref == red

    @precondition(lambda self: self.ids)
    @rule(pick=st.integers(0, 50))
    def cancel(self, pick: int) -> None:
        job_id = self.ids[pick % len(self.ids)]
        ref, red = self.both(lambda b: b.cancel(CancelRequest(job_id)))
        if isinstance(ref, str) or isinstance(red, str):
            assert ref == red
        else:
            assert ref.state == red.state

    @rule()
    def redrive(self) -> None:
        ref, red = self.both(lambda b: b.redrive(RedriveRequest()))
        assert ref == red

    @rule(jump=st.sampled_from([10.0, 100.0, 4000.0]))
    def time_passes_and_reaper_runs(self, jump: float) -> None:
        self.offset += jump
        self.ref.clock_offset = self.red.clock_offset = self.offset
        ref, red = self.both(lambda b: reap_expired(b))
        assert sorted(ref) == sorted(red)

    # -- invariants ---------------------------------------------------------------------------

    @invariant()
    def same_states_and_consistent_indexes(self) -> None:
        # SQLite promotes every due job on claim, Redis only those of the claimed queues:
        # promote everywhere first so both show the same picture.
        self.both(lambda b: b.promote_scheduled())
        for job_id in self.ids:
            ref, red = self.both(lambda b, j=job_id: b.get(j))
            assert (ref.state, ref.attempts, ref.error) == (red.state, red.attempts, red.error), job_id
            ref_pos, red_pos = self.both(lambda b, j=job_id: b.queue_position(j))
            assert ref_pos == red_pos, job_id
        ref_stats, red_stats = self.both(lambda b: b.queue_stats())
        assert [(s.queue, s.counts) for s in ref_stats] == [(s.queue, s.counts) for s in red_stats]


@pytest.mark.slow
def test_redis_agrees_with_the_reference_engine() -> None:
    if not _reachable("127.0.0.1", 6379):
        unavailable("Redis is not running on 127.0.0.1:6379")
    RedisAgreesWithSQLite.TestCase.settings = settings(
        max_examples=40,
        stateful_step_count=30,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
        # Each step is two engine round trips: shrinking a failure would take minutes, so a
        # failure is reported with its full (unshrunk) step list instead.
        phases=[Phase.explicit, Phase.reuse, Phase.generate],
    )
    RedisAgreesWithSQLite.TestCase().runTest()
