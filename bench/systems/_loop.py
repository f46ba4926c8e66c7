"""A private event loop for adapters of asyncio libraries, so the runner can stay synchronous.

Every coroutine passed to ``run`` is awaited inside ONE long-lived task: some clients (streaq's
coredis, via anyio) enter cancel scopes and context variables in ``__aenter__`` and insist on
leaving them from the same task in ``__aexit__``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class Loop:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.inbox: asyncio.Queue[tuple[Coroutine[Any, Any, Any], asyncio.Future[Any]] | None] = asyncio.Queue()
        self.session = self.loop.create_task(self._serve())

    async def _serve(self) -> None:
        while True:
            item = await self.inbox.get()
            if item is None:
                return
            coro, future = item
            try:
                future.set_result(await coro)
            except BaseException as exc:  # handed back to the caller of run()
                future.set_exception(exc)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        future: asyncio.Future[T] = self.loop.create_future()
        self.inbox.put_nowait((coro, future))
        return self.loop.run_until_complete(future)

    def close(self) -> None:
        self.inbox.put_nowait(None)
        self.loop.run_until_complete(self.session)
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()
