"""Group commit for concurrent submits: the requests that arrive while one enqueue commits go
into the next, as one engine call.

A durable submit costs one commit (an fsync on SQLite with ``synchronous=FULL``, a WAL flush on
PostgreSQL, a script call on Redis). With one commit per request, 32 concurrent clients wait in
line for 32 commits. Here the first request of an idle service goes to the engine at once (no
added latency), and every request that arrives meanwhile waits for that commit to end and then
goes, with the others that arrived, in ONE ``enqueue_many`` call: one transaction, one commit.
Each caller is answered only after the commit that stored its own job.

``enqueue_many`` is all-or-nothing, so one refused request (a full queue, a reused idempotency
key, an unknown dependency) would refuse its neighbours: a batch the engine refuses is redone
one request at a time, in arrival order, so every caller gets exactly the answer a lone submit
would have had. An engine that is unreachable answers every caller of the batch with that error
(as a lone submit would: whether it committed is unknown, the caller retries with its key).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from conveyor.backend.protocol import Backend, EnqueueRequest, EnqueueResult
from conveyor.errors import BackendUnavailable, ConveyorError

MAX_GROUP = 500
"""Most requests one commit carries (a bound on one statement's / script's run time)."""


class GroupCommit:
    def __init__(self, backend: Callable[[], Awaitable[Backend]], max_group: int = MAX_GROUP) -> None:
        self._backend = backend
        self._max_group = max_group
        self._waiting: list[tuple[EnqueueRequest, asyncio.Future[EnqueueResult]]] = []
        self._committer: asyncio.Task[None] | None = None
        self.commits = 0
        """Engine calls made (for the benchmark's requests-per-commit figure)."""

    async def enqueue(self, request: EnqueueRequest) -> EnqueueResult:
        """Store ``request`` with whichever others share its commit; its own result or error."""
        future: asyncio.Future[EnqueueResult] = asyncio.get_running_loop().create_future()
        self._waiting.append((request, future))
        if self._committer is None or self._committer.done():
            self._committer = asyncio.ensure_future(self._commit_all())
        # shield: a caller that goes away (client disconnect) must not cancel its neighbours' commit
        return await asyncio.shield(future)

    async def _commit_all(self) -> None:
        while self._waiting:
            group = self._waiting[: self._max_group]
            del self._waiting[: self._max_group]
            await self._commit(group)

    async def _commit(self, group: list[tuple[EnqueueRequest, asyncio.Future[EnqueueResult]]]) -> None:
        try:
            backend = await self._backend()
            self.commits += 1
            if len(group) == 1:
                results = [await backend.enqueue(group[0][0])]
            else:
                results = await backend.enqueue_many([request for request, _ in group])
        except BackendUnavailable as exc:
            _fail_all(group, exc)
            return
        except ConveyorError as exc:
            if len(group) == 1:
                _fail_all(group, exc)
            else:
                await self._one_by_one(group)
            return
        except BaseException as exc:
            _fail_all(group, exc)
            if not isinstance(exc, Exception):
                raise
            return
        for (_, future), result in zip(group, results, strict=True):
            if not future.done():
                future.set_result(result)

    async def _one_by_one(self, group: list[tuple[EnqueueRequest, asyncio.Future[EnqueueResult]]]) -> None:
        """Each request alone, in arrival order: the answers a lone submit gets."""
        try:
            backend = await self._backend()
        except Exception as exc:
            _fail_all(group, exc)
            return
        for request, future in group:
            try:
                self.commits += 1
                result = await backend.enqueue(request)
            except Exception as exc:
                if not future.done():
                    future.set_exception(exc)
            else:
                if not future.done():
                    future.set_result(result)


def _fail_all(group: list[tuple[EnqueueRequest, asyncio.Future[EnqueueResult]]], exc: BaseException) -> None:
    for _, future in group:
        if not future.done():
            future.set_exception(exc)
