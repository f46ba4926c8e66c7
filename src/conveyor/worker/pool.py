"""The pool of executor processes: keeps ``target`` children alive, lends them to jobs.

A child that dies is replaced at once; a child that cannot even load the app is retried
with exponential backoff so a broken deploy does not fork-bomb the machine. Resizing (the
autoscaler) starts new children or retires idle ones; busy ones retire when their job ends.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import multiprocessing
from collections.abc import Callable, Coroutine
from typing import Any

from conveyor.worker.executor import Executor, ExecutorBootError, ExecutorDied
from conveyor.worker.logs import log


class ExecutorPool:
    FAILING_AFTER = 3
    """Consecutive boot failures after which the pool counts as failing (see ``failing``)."""

    def __init__(self, app_spec: str, size: int, on_change: Callable[[], None] = lambda: None) -> None:
        self.app_spec = app_spec
        self.on_change = on_change
        self.target = size
        self._mp = multiprocessing.get_context("spawn")
        self._all: set[Executor] = set()
        self._idle: collections.deque[Executor] = collections.deque()
        self._waiters: collections.deque[asyncio.Future[Executor]] = collections.deque()
        self._boots: set[asyncio.Task[None]] = set()
        self._boot_failures = 0
        self._closed = False

    @property
    def size(self) -> int:
        """Children alive or starting."""
        return len(self._all)

    @property
    def busy(self) -> int:
        return sum(1 for ex in self._all if ex.busy)

    @property
    def failing(self) -> bool:
        """True while new children keep failing to load the app: claim no sync work meanwhile."""
        return self._boot_failures >= self.FAILING_AFTER

    def pids(self) -> list[int]:
        return [ex.pid for ex in self._all if ex.pid is not None and not ex.dead]

    def start(self) -> None:
        self._fill()

    # -- growth and replacement ----------------------------------------------------------------

    def _track(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._boots.add(task)
        task.add_done_callback(self._boots.discard)

    def _fill(self) -> None:
        while not self._closed and len(self._all) < self.target:
            ex = Executor(self.app_spec, self._mp, self._on_death)
            self._all.add(ex)
            self._track(self._boot(ex))

    async def _boot(self, ex: Executor) -> None:
        if self._boot_failures:
            await asyncio.sleep(min(30.0, 0.5 * 2 ** (self._boot_failures - 1)))
        try:
            await ex.start()
        except (ExecutorBootError, ExecutorDied, TimeoutError, OSError) as exc:
            self._boot_failures += 1
            log("executor.boot_failed", logging.ERROR, error=str(exc) or type(exc).__name__)
            self._all.discard(ex)
            self._fill()
            self.on_change()
            return
        recovered = self.failing
        self._boot_failures = 0
        log("executor.started", logging.DEBUG, pid=ex.pid)
        self.release(ex)
        if recovered:
            self.on_change()

    def _on_death(self, ex: Executor) -> None:
        """Called by the executor when its child is gone (killed, crashed, or retired)."""
        self._all.discard(ex)
        with contextlib.suppress(ValueError):
            self._idle.remove(ex)
        self._fill()

    # -- lending --------------------------------------------------------------------------------

    async def acquire(self) -> Executor:
        """An idle executor, waiting for one to boot or come back if needed."""
        while self._idle:
            ex = self._idle.popleft()
            if not ex.dead:
                ex.busy = True
                return ex
        fut: asyncio.Future[Executor] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        try:
            ex = await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.release(fut.result())  # handed over just as we were canceled: give it back
            raise
        ex.busy = True
        return ex

    def release(self, ex: Executor) -> None:
        """Give an executor back after a job (or after boot)."""
        ex.busy = False
        if ex.dead:
            self._on_death(ex)
            return
        if self._closed or len(self._all) > self.target:
            self._all.discard(ex)
            self._track(ex.close())
            return
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(ex)
                return
        self._idle.append(ex)

    def resize(self, target: int) -> None:
        """Grow now; shrink by retiring idle children now and busy ones as they finish."""
        self.target = target
        while len(self._all) > target and self._idle:
            ex = self._idle.pop()
            self._all.discard(ex)
            self._track(ex.close())
        self._fill()

    async def close(self) -> None:
        """Stop every child (idle ones politely, anything else by SIGKILL)."""
        self._closed = True
        for task in list(self._boots):
            task.cancel()
        for fut in self._waiters:
            fut.cancel()
        await asyncio.gather(*(ex.close() for ex in list(self._all)), return_exceptions=True)
        self._all.clear()
        self._idle.clear()
