"""Random operation sequences on a real engine, checked step by step against a model.

The model is built from ``conveyor.states.TRANSITIONS`` (next_state), so an engine that takes a
transition the table forbids, or refuses one it allows, fails here with a shrunk reproduction.

Time is virtual: the machine only moves the engine clock through ``clock_offset``. Every model
time (delays, leases, ttl) is an odd multiple of 50 s and every clock step a multiple of 100 s,
so the few real milliseconds an example takes can never flip a comparison.

One store per test (engine), one fresh queue and idempotency-key prefix per example; each
example cancels what it left unfinished, so reaping and promotion see only its own jobs.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from conveyor.backend import Backend, create_backend
from conveyor.backend.protocol import (
    CancelRequest,
    Capability,
    ClaimRequest,
    CompleteRequest,
    EnqueueRequest,
    FailRequest,
    HeartbeatRequest,
    JobFilter,
    Lease,
    ProgressRequest,
    RedriveRequest,
    ReleaseRequest,
)
from conveyor.errors import IdempotencyConflict, InvalidTransition
from conveyor.reaper import reap_expired
from conveyor.states import Action, next_state
from conveyor.types import Job, JobState
from tests.engines import ENGINES, engine_url

T = TypeVar("T")
W, S, Q, R = JobState.WAITING, JobState.SCHEDULED, JobState.QUEUED, JobState.RUNNING
OK, FAILED, CANCELED = JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELED

DELAYS = (50.0, 150.0, 350.0)
RETRY_DELAYS = (0.0, 50.0, 150.0)
LEASES = (150.0, 250.0)
CLOCK_STEPS = (100.0, 200.0, 500.0)
KEY_TTL = 450.0

SETTINGS = settings(
    # 25 keeps `make test` fast; CONVEYOR_STATEFUL_EXAMPLES=500 for a deeper hunt.
    max_examples=int(os.environ.get("CONVEYOR_STATEFUL_EXAMPLES", "25")),
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@dataclass
class Model:
    """What the engine must say about one job."""

    id: str
    state: JobState
    attempts: int = 0
    max_attempts: int = 3
    due: float = 0.0  # virtual time at which a scheduled job becomes claimable
    lease_until: float = 0.0
    token: str | None = None  # last lease token issued
    stale: list[str] = field(default_factory=list)
    canceled_while_running: bool = False
    parent: str | None = None


class JobMachine(RuleBasedStateMachine):
    """Set ``backend`` and ``loop`` on a subclass (see ``run_machine``)."""

    backend: Backend
    loop: asyncio.AbstractEventLoop

    def __init__(self) -> None:
        super().__init__()
        tag = uuid.uuid4().hex[:10]
        self.queue = f"sm-{tag}"
        self.key_prefix = f"sm-{tag}-"
        self.v = 0.0
        self.backend.clock_offset = 0.0
        self.jobs: dict[str, Model] = {}
        self.keys: dict[str, tuple[str, int, float]] = {}  # key -> (job id, payload, expires)

    # -- plumbing ---------------------------------------------------------------------------

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    def move(self, job: Model, action: Action) -> None:
        job.state = next_state(job.state, action)

    def pick(self, data: st.DataObject, states: frozenset[JobState] | None = None) -> Model:
        candidates = [j for j in self.jobs.values() if states is None or j.state in states]
        return data.draw(st.sampled_from(sorted(candidates, key=lambda j: j.id)), label="job")

    def pick_token(self, data: st.DataObject) -> tuple[Model, str, bool]:
        """A job that was claimed at least once and one of its tokens; True if it is the holder's."""
        claimed = sorted((j for j in self.jobs.values() if j.token), key=lambda j: j.id)
        running = [j for j in claimed if j.state is R]
        if running:
            prefer_running: bool = data.draw(st.booleans(), label="a running job")
            claimed = running if prefer_running else claimed
        job = data.draw(st.sampled_from(claimed), label="job")
        token = data.draw(st.sampled_from([job.token or "", *job.stale]), label="token")
        return job, token, job.state is R and token == job.token

    def has(self, *states: JobState) -> bool:
        return any(j.state in states for j in self.jobs.values())

    def claimed_once(self) -> bool:
        return any(j.token for j in self.jobs.values())

    def release_dependents(self, parent_id: str) -> None:
        for job in self.jobs.values():
            if job.parent == parent_id and job.state is W:
                self.move(job, Action.DEPS_DONE)
                if job.due > self.v:
                    job.state = S  # released into the future: its own delay still applies

    def cancel_cascade(self, job: Model) -> None:
        job.canceled_while_running = job.state is R
        self.move(job, Action.CANCEL)
        self.cancel_waiting_children(job.id)

    def cancel_waiting_children(self, parent_id: str) -> None:
        """The default dependency policy (fail-fast): a parent that failed or was canceled
        cancels its waiting children, and theirs."""
        for child in self.jobs.values():
            if child.parent == parent_id and child.state is W:
                self.cancel_cascade(child)

    # -- the one rule ------------------------------------------------------------------------

    @initialize(priorities=st.lists(st.sampled_from([0, 1, 5]), min_size=1, max_size=4))
    def some_work(self, priorities: list[int]) -> None:
        """Every example starts with claimable jobs."""
        for priority in priorities:
            self.enqueue(None, priority, 3, None, 0)

    @rule(data=st.data())
    def step(self, data: st.DataObject) -> None:
        """One operation, drawn by weight among those that apply now.

        A single dispatching rule rather than one rule per operation: Hypothesis' swarm testing
        turns whole rules off per example, which with ~25 examples left most of them as long
        runs of enqueue/cancel and almost never reached a takeover (claim, reap, re-claim, stale
        write). The weights keep the worker path busy."""
        ops: list[tuple[str, int]] = [("enqueue", 3), ("advance", 1)]
        if self.jobs and Capability.DEPENDENCIES in self.backend.capabilities:
            ops.append(("enqueue_dependent", 1))
        if self.has(Q, S):
            ops.append(("claim", 4))
        if self.claimed_once():
            ops.append(("worker_reports", 6))
        if self.has(W, S, Q, R):
            ops.append(("cancel", 1))
        if self.has(R):
            ops.append(("reap", 3))
        if self.has(S):
            ops.append(("promote", 1))
        if self.has(FAILED):
            ops.append(("redrive", 2))
        op = data.draw(st.sampled_from([name for name, weight in ops for _ in range(weight)]), label="op")
        getattr(self, f"op_{op}")(data)

    # -- operations -------------------------------------------------------------------------

    def op_enqueue(self, data: st.DataObject) -> None:
        self.enqueue(
            delay=data.draw(st.sampled_from([None, None, *DELAYS]), label="delay"),
            priority=data.draw(st.sampled_from([0, 1, 5]), label="priority"),
            max_attempts=data.draw(st.integers(1, 3), label="max_attempts"),
            key=data.draw(st.sampled_from([None, None, "a", "b"]), label="idempotency_key"),
            payload=data.draw(st.integers(0, 1), label="payload"),
        )

    def enqueue(self, delay: float | None, priority: int, max_attempts: int, key: str | None, payload: int) -> None:
        request = EnqueueRequest(
            task="sm.task",
            args={"payload": payload},
            queue=self.queue,
            priority=priority,
            max_attempts=max_attempts,
            delay=delay,
            idempotency_key=None if key is None else self.key_prefix + key,
            idempotency_ttl=KEY_TTL,
        )
        known = self.keys.get(key) if key is not None else None
        if known is not None and known[2] > self.v:
            job_id, known_payload, _ = known
            if known_payload != payload:
                with pytest.raises(IdempotencyConflict) as info:
                    self.run(self.backend.enqueue(request))
                assert info.value.job_id == job_id
                return
            replay = self.run(self.backend.enqueue(request))
            assert replay.created is False and replay.job.id == job_id
            self.sync_promotions([replay.job])
            assert replay.job.state is self.jobs[job_id].state
            return
        res = self.run(self.backend.enqueue(request))
        assert res.created is True and res.job.id not in self.jobs
        state = S if delay else Q
        assert res.job.state is state
        self.jobs[res.job.id] = Model(res.job.id, state, max_attempts=max_attempts, due=self.v + (delay or 0))
        if key is not None:
            self.keys[key] = (res.job.id, payload, self.v + KEY_TTL)

    def op_enqueue_dependent(self, data: st.DataObject) -> None:
        parent = self.pick(data)
        delay = data.draw(st.sampled_from([None, DELAYS[1]]), label="delay")
        request = EnqueueRequest(
            task="sm.child", args={}, queue=self.queue, delay=delay, depends_on=(parent.id,), max_attempts=2
        )
        res = self.run(self.backend.enqueue(request))
        if parent.state is OK:
            expected = S if delay else Q
        elif parent.state in (CANCELED, FAILED):
            expected = CANCELED  # the default policy: a dependency that did not succeed cancels
        else:
            expected = W
        assert res.job.state is expected, f"parent {parent.state}, delay {delay}"
        self.jobs[res.job.id] = Model(res.job.id, expected, max_attempts=2, due=self.v + (delay or 0), parent=parent.id)

    def op_claim(self, data: st.DataObject) -> None:
        limit = data.draw(st.integers(1, 3), label="limit")
        lease = data.draw(st.sampled_from(LEASES), label="lease")
        engine_view = {j.id: j for j in self.list_ours()}
        claimable = [
            engine_view[j.id] for j in self.jobs.values() if j.state is Q or (j.state is S and j.due <= self.v)
        ]
        expected = sorted(claimable, key=lambda j: (-j.priority, j.run_at, j.id))[:limit]
        claimed = self.run(
            self.backend.claim(
                ClaimRequest(worker_id="sm-worker", queues=(self.queue,), limit=limit, lease_seconds=lease)
            )
        )
        assert [j.id for j in claimed] == [j.id for j in expected], "claim order: priority DESC, run_at, id"
        for got in claimed:
            job = self.jobs[got.id]
            self.move(job, Action.CLAIM)
            job.attempts += 1
            assert got.state is R and got.attempts == job.attempts
            assert got.lease_token and got.lease_token != job.token and got.lease_token not in job.stale
            if job.token:
                job.stale.append(job.token)
            job.token = got.lease_token
            job.lease_until = self.v + lease

    def op_worker_reports(self, data: st.DataObject) -> None:
        """A worker (the lease holder, or one whose token is stale) reports on its job."""
        job, token, holder = self.pick_token(data)
        op = data.draw(st.sampled_from(["heartbeat", "complete", "fail", "release", "progress"]), label="report")
        if op == "heartbeat":
            self.heartbeat(job, token, holder, data.draw(st.sampled_from(LEASES), label="lease"))
        elif op == "complete":
            done = self.run(self.backend.complete(CompleteRequest(job.id, token, {"by": token[:8]})))
            assert done is holder
            if holder:
                self.move(job, Action.COMPLETE)
                self.release_dependents(job.id)
        elif op == "fail":
            self.fail(job, token, holder, data.draw(st.sampled_from([None, *RETRY_DELAYS]), label="retry_delay"))
        elif op == "release":
            assert self.run(self.backend.release(ReleaseRequest(job.id, token))) is holder
            if holder:
                self.move(job, Action.RELEASE)
                job.attempts -= 1
        else:
            assert self.run(self.backend.progress(ProgressRequest(job.id, token, 0.5, "half"))) is holder

    def heartbeat(self, job: Model, token: str, holder: bool, lease: float) -> None:
        answer = self.run(self.backend.heartbeat(HeartbeatRequest((Lease(job.id, token),), lease_seconds=lease)))
        status = answer[job.id]
        if holder:
            assert status == "ok"
            job.lease_until = self.v + lease
        elif job.state is CANCELED and job.canceled_while_running and token == job.token:
            assert status == "canceled"
        elif job.state is R:
            assert status == "lost", "a stale token must not keep a lease that another worker holds"
        else:
            assert status in ("lost", "canceled")

    def fail(self, job: Model, token: str, holder: bool, retry: float | None) -> None:
        error = {"type": "SmError", "message": "boom"}
        # The worker's decision, re-derived by the model independently of states.after_failure.
        dead = retry is None or job.attempts >= job.max_attempts
        decided = FAILED if dead else S
        moved = self.run(self.backend.fail(FailRequest(job.id, token, error, decided, retry or 0.0)))
        if not holder:
            assert moved is None
            return
        if dead:
            self.move(job, Action.FAIL)
            self.cancel_waiting_children(job.id)
        else:
            self.move(job, Action.RETRY)
            job.due = self.v + retry
        assert moved is job.state

    def op_cancel(self, data: st.DataObject) -> None:
        job = self.pick(data)  # finished jobs too: canceling them must be refused
        if job.state.terminal:
            with pytest.raises(InvalidTransition):
                self.run(self.backend.cancel(CancelRequest(job.id)))
            return
        canceled = self.run(self.backend.cancel(CancelRequest(job.id)))
        assert canceled.state is CANCELED
        self.cancel_cascade(job)

    def op_advance(self, data: st.DataObject) -> None:
        self.advance_clock(data.draw(st.sampled_from(CLOCK_STEPS), label="clock_step"))

    def advance_clock(self, step: float) -> None:
        self.v += step
        self.backend.clock_offset = self.v

    def op_reap(self, data: st.DataObject) -> None:
        """Move the clock (maybe past some leases), then reap: as if workers died."""
        self.advance_clock(data.draw(st.sampled_from((0.0, *CLOCK_STEPS)), label="clock_step"))
        expected = {j.id for j in self.jobs.values() if j.state is R and j.lease_until < self.v}
        reaped = self.run(reap_expired(self.backend))
        assert sorted(reaped) == sorted(expected)
        for job_id in expected:
            job = self.jobs[job_id]
            self.move(job, Action.EXPIRE_FAIL if job.attempts >= job.max_attempts else Action.EXPIRE_REQUEUE)
            if job.state is FAILED:
                self.cancel_waiting_children(job.id)
            stored = self.run(self.backend.get(job_id))
            assert stored is not None and stored.error is not None and stored.error.get("type") == "LeaseExpired"

    def op_promote(self, data: st.DataObject) -> None:
        """Move the clock, then run the scheduler's promotion."""
        self.advance_clock(data.draw(st.sampled_from((0.0, *CLOCK_STEPS)), label="clock_step"))
        due = [j for j in self.jobs.values() if j.state is S and j.due <= self.v]
        assert self.run(self.backend.promote_scheduled()) == len(due)
        for job in due:
            self.move(job, Action.PROMOTE)

    def op_redrive(self, data: st.DataObject) -> None:
        job = self.pick(data, frozenset({FAILED, OK, CANCELED}))
        moved = self.run(self.backend.redrive(RedriveRequest(job_ids=(job.id,))))
        assert moved == (1 if job.state is FAILED else 0)
        if moved:
            self.move(job, Action.REDRIVE)
            job.attempts = 0

    # -- checks -----------------------------------------------------------------------------

    def list_ours(self) -> list[Job]:
        page = self.run(self.backend.list_jobs(JobFilter(queue=self.queue, limit=1000)))
        assert page.next_cursor is None
        return page.jobs

    def sync_promotions(self, jobs: list[Job]) -> None:
        """A due scheduled job may have been promoted as a side effect (e.g. by a claim)."""
        for got in jobs:
            job = self.jobs.get(got.id)
            if job is not None and job.state is S and job.due <= self.v and got.state is Q:
                self.move(job, Action.PROMOTE)

    @invariant()
    def engine_matches_model(self) -> None:
        stored = self.list_ours()
        self.sync_promotions(stored)
        assert {j.id for j in stored} == set(self.jobs)
        for got in stored:
            job = self.jobs[got.id]
            assert (got.state, got.attempts) == (job.state, job.attempts), f"job {got.id}"
            if job.state is R:
                assert got.lease_token == job.token
        stats = [s for s in self.run(self.backend.queue_stats()) if s.queue == self.queue]
        if self.jobs:
            expected = Counter(j.state.value for j in self.jobs.values())
            assert len(stats) == 1
            assert {k: v for k, v in stats[0].counts.items() if v} == dict(expected)

    def teardown(self) -> None:
        for job in self.jobs.values():
            if not job.state.terminal:
                with contextlib.suppress(InvalidTransition):  # canceled by a cascade a moment ago
                    self.run(self.backend.cancel(CancelRequest(job.id, reason="example over")))
        self.backend.clock_offset = 0.0


@pytest.mark.parametrize("engine", ENGINES)
def test_engine_follows_the_transition_table(engine: str, tmp_path: Path) -> None:
    with engine_url(engine, tmp_path) as url:
        loop = asyncio.new_event_loop()
        backend = create_backend(url)
        try:
            loop.run_until_complete(backend.open())
            machine = type(f"{engine.title()}Machine", (JobMachine,), {"backend": backend, "loop": loop})
            run_state_machine_as_test(machine, settings=SETTINGS)
        finally:
            loop.run_until_complete(backend.close())
            loop.close()
