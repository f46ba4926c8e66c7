"""Overrun moves (``move``) and task checkpoints (``checkpoint``), fenced by the lease token,
on every engine: the job keeps its id, events, progress and checkpoint, changes queue, gives
its attempt back, and a worker that lost the lease can do neither."""

from __future__ import annotations

from conveyor.backend import Backend
from conveyor.backend.protocol import (
    CheckpointRequest,
    CompleteRequest,
    EventsRequest,
    MoveRequest,
    ProgressRequest,
)
from conveyor.reaper import reap_expired
from conveyor.types import JobState
from tests.conformance.conftest import claim, claim_one, enqueue, fetch


async def test_move_requeues_on_the_other_queue_without_charging_an_attempt(backend: Backend) -> None:
    first = await enqueue(backend, queue="fast", max_attempts=1)
    job = await claim_one(backend, "fast")
    assert job.attempts == 1
    token = job.lease_token or ""
    assert await backend.progress(ProgressRequest(job.id, token, 0.4, "page 4/10"))
    assert await backend.move(MoveRequest(job.id, token, "slow")) is True

    moved = await fetch(backend, job.id)
    assert moved.state is JobState.QUEUED and moved.queue == "slow"
    assert moved.attempts == 0, "an overrun move must not charge the attempt"
    assert (moved.progress, moved.progress_message) == (0.4, "page 4/10")
    assert moved.lease_expires_at is None
    assert await claim(backend, "fast") == [], "the job left the fast queue"

    again = await claim_one(backend, "slow")
    assert again.id == first.id and again.attempts == 1, "max_attempts=1 still allows the run on the slow queue"
    assert again.lease_token != token
    assert await backend.complete(CompleteRequest(again.id, again.lease_token or "", "done"))
    assert (await fetch(backend, job.id)).state is JobState.SUCCEEDED

    events = await backend.events(EventsRequest(job.id))
    move_events = [e for e in events if e.data.get("reason") == "moved"]
    assert len(move_events) == 1
    assert move_events[0].state is JobState.QUEUED
    assert move_events[0].data["from"] == "fast" and move_events[0].data["to"] == "slow"
    assert events[0].type == "enqueued"
    assert [e.seq for e in events] == sorted(e.seq for e in events)


async def test_move_shows_in_both_queues_stats(backend: Backend) -> None:
    await enqueue(backend, queue="fast")
    job = await claim_one(backend, "fast")
    assert await backend.move(MoveRequest(job.id, job.lease_token or "", "slow"))
    stats = {s.queue: s for s in await backend.queue_stats()}
    assert stats["slow"].counts["queued"] == 1
    assert "fast" not in stats or stats["fast"].counts["running"] == 0
    assert stats["slow"].oldest_queued_age is not None


async def test_move_is_fenced_by_the_lease_token(backend: Backend) -> None:
    await enqueue(backend, queue="fast")
    stale = await claim_one(backend, "fast", lease=1.0)
    assert await backend.move(MoveRequest(stale.id, "not-the-token", "slow")) is False
    backend.clock_offset += 60
    assert stale.id in await reap_expired(backend)
    owner = await claim_one(backend, "fast", worker="w2")
    # The worker that lost the lease cannot move the job away from its new owner.
    assert await backend.move(MoveRequest(stale.id, stale.lease_token or "", "slow")) is False
    held = await fetch(backend, owner.id)
    assert held.state is JobState.RUNNING and held.queue == "fast" and held.lease_token == owner.lease_token
    # Nor can anyone move a job that is not running.
    assert await backend.complete(CompleteRequest(owner.id, owner.lease_token or "", None))
    assert await backend.move(MoveRequest(owner.id, owner.lease_token or "", "slow")) is False
    assert (await fetch(backend, owner.id)).state is JobState.SUCCEEDED
    assert await backend.move(MoveRequest("no-such-job", "t", "slow")) is False


async def test_checkpoint_is_stored_fenced_and_survives_a_move(backend: Backend) -> None:
    await enqueue(backend, queue="fast")
    job = await claim_one(backend, "fast")
    assert job.checkpoint is None
    token = job.lease_token or ""
    assert await backend.checkpoint(CheckpointRequest(job.id, token, {"page": 3, "done": [1, 2, 3]}))
    assert await backend.checkpoint(CheckpointRequest(job.id, token, {"page": 4, "done": [1, 2, 3, 4]}))
    assert await backend.checkpoint(CheckpointRequest(job.id, "stale", {"page": 99})) is False
    assert (await fetch(backend, job.id)).checkpoint == {"page": 4, "done": [1, 2, 3, 4]}

    assert await backend.move(MoveRequest(job.id, token, "slow"))
    # The old token is dead after the move: no more checkpoints from the first run.
    assert await backend.checkpoint(CheckpointRequest(job.id, token, {"page": 5})) is False
    resumed = await claim_one(backend, "slow")
    assert resumed.checkpoint == {"page": 4, "done": [1, 2, 3, 4]}, "the next run reads the checkpoint back"
    assert await backend.checkpoint(CheckpointRequest(resumed.id, resumed.lease_token or "", [1, "two", None]))
    assert (await fetch(backend, job.id)).checkpoint == [1, "two", None]


async def test_a_checkpoint_survives_a_reap_for_the_next_owner(backend: Backend) -> None:
    await enqueue(backend)
    stale = await claim_one(backend, lease=1.0)
    assert await backend.checkpoint(CheckpointRequest(stale.id, stale.lease_token or "", {"rows": 500}))
    backend.clock_offset += 60
    assert stale.id in await reap_expired(backend)
    owner = await claim_one(backend, worker="w2")
    assert owner.checkpoint == {"rows": 500}
    assert await backend.checkpoint(CheckpointRequest(stale.id, stale.lease_token or "", {"rows": 1})) is False
    assert (await fetch(backend, owner.id)).checkpoint == {"rows": 500}
