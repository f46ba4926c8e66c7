"""Wake-ups by LISTEN/NOTIFY on one dedicated connection per backend.

Every transition that makes work claimable (enqueue, release, retry, promotion, redrive,
dependents released, resume) runs ``pg_notify('<schema>', queue)`` in its own transaction, so
the notification is delivered exactly when the work becomes visible. The channel is the schema
name, so two Conveyor schemas in one database never wake each other's workers. The listener counts
notifications per queue; ``wait`` returns as soon as one arrives for a queue the caller
serves. Lost notifications only cost the caller's timeout (polling fallback):

* a notification that arrives while the caller is busy claiming (not waiting) is remembered:
  the next ``wait`` for those queues returns at once, so the caller claims again;
* whenever the LISTEN connection is (re)established, every waiter is woken, because
  notifications sent while it was down are lost;
* the connection is pinged when quiet so a silently dead socket is noticed and replaced.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from typing import Any

import psycopg

from conveyor.backend.postgres.connection import Settings, connect

PING_EVERY = 10.0
log = logging.getLogger("conveyor.postgres")


class Listener:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._counts: Counter[str] = Counter()
        self._epoch = 0
        self._waiters: set[tuple[frozenset[str], asyncio.Future[None]]] = set()
        self._seen: dict[tuple[str, ...], int] = {}
        self._task: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()
        self._closed = False

    def _generation(self, queues: tuple[str, ...]) -> int:
        return self._epoch + sum(self._counts[q] for q in queues)

    def _wake(self, queue: str | None) -> None:
        for names, fut in list(self._waiters):
            if (queue is None or queue in names) and not fut.done():
                fut.set_result(None)

    async def wait(self, queues: tuple[str, ...], timeout: float) -> None:
        if self._closed:
            await asyncio.sleep(timeout)
            return
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._listen(), name="conveyor-pg-listen")
        key = tuple(sorted(set(queues)))
        last = self._seen.get(key)
        if last is None:
            # First wait for these queues: the caller's last claim may predate LISTEN, so make
            # sure we listen, then let it claim once more before it really sleeps.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._listening.wait(), timeout)
            self._seen[key] = self._generation(key)
            return
        if last != self._generation(key):
            # Notifications arrived while the caller was claiming, not waiting.
            self._seen[key] = self._generation(key)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (frozenset(key), fut)
        self._waiters.add(entry)
        try:
            await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            pass
        finally:
            self._waiters.discard(entry)
            self._seen[key] = self._generation(key)

    async def _listen(self) -> None:
        delay = 0.05
        while not self._closed:
            try:
                conn = await connect(self.settings, autocommit=True)
                try:
                    await conn.execute(f"LISTEN {self.settings.schema}")  # the channel is the schema name
                    self._epoch += 1
                    self._listening.set()
                    self._wake(None)  # anything sent while we were not listening is lost
                    delay = 0.05
                    while not self._closed:
                        async for note in conn.notifies(timeout=PING_EVERY):
                            self._counts[note.payload] += 1
                            self._wake(note.payload)
                        await conn.execute("SELECT 1")
                finally:
                    self._listening.clear()
                    with contextlib.suppress(Exception):
                        await conn.close()
            except asyncio.CancelledError:
                raise
            except (psycopg.Error, OSError) as exc:
                log.info("LISTEN connection lost (%s); reconnecting in %.2fs", exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    async def close(self) -> None:
        self._closed = True
        self._wake(None)
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def stats(self) -> dict[str, Any]:
        return {"epoch": self._epoch, "notifications": sum(self._counts.values())}
