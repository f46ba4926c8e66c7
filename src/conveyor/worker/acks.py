"""Acknowledge finished jobs in batches: many ``complete`` outcomes, one engine round trip.

Recording each success with its own ``backend.complete`` costs one transaction (one commit,
one round trip) per job, which bounds how fast a node drains short jobs. The batcher is a
group commit: the first outcome starts a flush on the next pass of the event loop (so every
job that finished in the same pass shares it); outcomes that arrive while a flush is in flight
wait for it and go together in the next one. A lone job therefore waits for no timer, and a
busy node writes ``max_batch`` outcomes per transaction.

Nothing changes for fencing: ``complete_many`` fences every job on its own lease token. An
outcome still waiting here when the node is SIGKILLed is simply lost with the node, exactly
like a ``complete`` call that never got sent: its lease expires and the reaper requeues the job.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable

from conveyor.backend.protocol import CompleteRequest

Engine = Callable[[Callable[[], Awaitable[list[bool]]]], Awaitable[list[bool] | None]]


class CompletionBatcher:
    """Collects ``CompleteRequest``s and writes them with ``complete_many``.

    ``write`` is the engine call (``backend.complete_many``); ``engine`` wraps a call with the
    supervisor's retry policy and answers None when it gave up (the leases then expire).
    """

    def __init__(
        self,
        write: Callable[[list[CompleteRequest]], Awaitable[list[bool]]],
        engine: Engine,
        max_batch: int = 256,
    ) -> None:
        self._write = write
        self._engine = engine
        self.max_batch = max_batch
        self._pending: list[tuple[CompleteRequest, asyncio.Future[bool | None]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def complete(self, req: CompleteRequest) -> bool | None:
        """True: recorded; False: fenced off (lease lost or job canceled); None: engine gave up."""
        fut: asyncio.Future[bool | None] = asyncio.get_running_loop().create_future()
        self._pending.append((req, fut))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.ensure_future(self._flush_all())
        return await asyncio.shield(fut)

    async def close(self) -> None:
        """Wait until every outcome handed in so far is written (called before the node exits)."""
        while self._flusher is not None and not self._flusher.done():
            await asyncio.wait({self._flusher})

    async def _flush_all(self) -> None:
        await asyncio.sleep(0)  # let every job that finished in this loop pass join the batch
        while self._pending:
            batch = self._pending[: self.max_batch]
            del self._pending[: self.max_batch]
            reqs = [req for req, _ in batch]
            try:
                answers: list[bool] | list[None] | None = await self._engine(functools.partial(self._write, reqs))
            except Exception as exc:  # not an engine outage: each job's settle reports it
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            if answers is None:
                answers = [None] * len(batch)
            for (_, fut), ok in zip(batch, answers, strict=True):
                if not fut.done():
                    fut.set_result(ok)
