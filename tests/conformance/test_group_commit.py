"""Group commit (``conveyor.group_commit``) on every engine: concurrent submits share engine
calls, yet each caller gets exactly the answer a lone submit would have had."""

from __future__ import annotations

import asyncio

import pytest

from conveyor.backend import Backend
from conveyor.backend.protocol import EnqueueRequest, EnqueueResult
from conveyor.errors import IdempotencyConflict, QueueFull
from conveyor.group_commit import GroupCommit


class CountingBackend:
    """The real engine, with a count of the enqueue calls that reached it."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.calls: list[int] = []

    async def enqueue(self, req: EnqueueRequest) -> EnqueueResult:
        self.calls.append(1)
        return await self.backend.enqueue(req)

    async def enqueue_many(self, reqs: list[EnqueueRequest]) -> list[EnqueueResult]:
        self.calls.append(len(reqs))
        return await self.backend.enqueue_many(reqs)


def _group(backend: Backend) -> tuple[GroupCommit, CountingBackend]:
    counting = CountingBackend(backend)

    async def provide() -> Backend:
        return counting  # type: ignore[return-value]

    return GroupCommit(provide), counting


async def test_concurrent_submits_share_commits_and_each_gets_its_own_job(backend: Backend) -> None:
    group, counting = _group(backend)
    requests = [EnqueueRequest(task="t", args={"n": n}) for n in range(60)]
    results = await asyncio.gather(*(group.enqueue(r) for r in requests))
    assert [r.job.args["n"] for r in results] == list(range(60)), "each caller gets the job it submitted"
    assert all(r.created for r in results)
    assert len({r.job.id for r in results}) == 60
    for result in results:
        stored = await backend.get(result.job.id)
        assert stored is not None and stored.args == result.job.args, "answered only once stored"
    assert sum(counting.calls) == 60
    assert len(counting.calls) < 60, f"concurrent submits shared commits: {counting.calls}"


async def test_a_lone_submit_is_one_plain_enqueue(backend: Backend) -> None:
    group, counting = _group(backend)
    first = await group.enqueue(EnqueueRequest(task="t", args={}))
    second = await group.enqueue(EnqueueRequest(task="t", args={}))
    assert counting.calls == [1, 1] and first.created and second.created


async def test_a_refused_request_refuses_only_itself(backend: Backend) -> None:
    group, counting = _group(backend)
    await backend.enqueue(EnqueueRequest(task="t", args={"v": 1}, idempotency_key="k"))
    await backend.enqueue(EnqueueRequest(task="t", args={}, queue="small"))
    good = [EnqueueRequest(task="t", args={"n": n}) for n in range(5)]
    reused = EnqueueRequest(task="t", args={"v": 2}, idempotency_key="k")
    full = EnqueueRequest(task="t", args={}, queue="small", max_depth=1)
    replay = EnqueueRequest(task="t", args={"v": 1}, idempotency_key="k")
    outcomes = await asyncio.gather(
        *(group.enqueue(r) for r in (good[0], good[1], reused, good[2], full, good[3], replay, good[4])),
        return_exceptions=True,
    )
    assert counting.calls[0] == 8, "they arrived together: one group, refused by the engine, then redone alone"
    assert isinstance(outcomes[2], IdempotencyConflict)
    assert isinstance(outcomes[4], QueueFull)
    replayed = outcomes[6]
    assert isinstance(replayed, EnqueueResult) and not replayed.created and replayed.job.args == {"v": 1}
    created = [o for i, o in enumerate(outcomes) if i in (0, 1, 3, 5, 7)]
    assert all(isinstance(o, EnqueueResult) and o.created for o in created), outcomes
    for result in created:
        assert isinstance(result, EnqueueResult) and await backend.get(result.job.id) is not None


@pytest.mark.parametrize("callers", [1, 7])
async def test_a_caller_that_goes_away_does_not_cancel_the_others(backend: Backend, callers: int) -> None:
    group, _ = _group(backend)
    leaving = asyncio.ensure_future(group.enqueue(EnqueueRequest(task="t", args={"who": "leaver"})))
    staying = [asyncio.ensure_future(group.enqueue(EnqueueRequest(task="t", args={"n": n}))) for n in range(callers)]
    await asyncio.sleep(0)
    leaving.cancel()
    results = await asyncio.gather(*staying)
    assert all(r.created for r in results)
    for result in results:
        assert await backend.get(result.job.id) is not None
