"""pgqueuer: ``Queries.enqueue`` per job and with lists per batch, ``pgq run`` nodes (asyncpg driver).

Worker: the supervisor that ``pgq run bench.apps.pgqueuer_app:main`` runs, with 8 concurrent tasks,
called from ``python -m bench.apps.pgqueuer_app 8`` because that CLI crashes in 1.6.0. Batch size 4
(it requires max_concurrent >= 2 x batch_size); LISTEN/NOTIFY wake-ups, its default; finished
jobs move to pgqueuer_log, its design.
"""

from __future__ import annotations

import sys
from typing import Any

from bench.systems._loop import Loop
from bench.systems.base import System


class Adapter(System):
    name = "pgqueuer"
    concurrency_note = "pgq run --max-concurrent-tasks 8 --batch-size 4 per node (async entrypoints), LISTEN/NOTIFY"
    batch_note = "Queries.enqueue with lists, 500 jobs per call"

    def open(self) -> None:
        import asyncpg
        from pgqueuer.db import AsyncpgDriver
        from pgqueuer.queries import Queries

        self.loop = Loop()
        self.conn: Any = self.loop.run(asyncpg.connect(self.url))
        self.queries = Queries(AsyncpgDriver(self.conn))
        self.loop.run(self.queries.install())

    def close(self) -> None:
        self.loop.run(self.conn.close())
        self.loop.close()

    def enqueue_single(self, n: int) -> None:
        async def go() -> None:
            for _ in range(n):
                await self.queries.enqueue("noop", None)

        self.loop.run(go())

    def enqueue_batch(self, n: int) -> None:
        self.loop.run(self.queries.enqueue(["noop"] * n, [None] * n, [0] * n))

    def enqueue_probe(self, stamp: float) -> None:
        self.loop.run(self.queries.enqueue("probe", repr(stamp).encode()))

    def worker_command(self) -> list[str]:
        # `pgq run` itself crashes at start-up in pgqueuer 1.6.0 (see the app module): same supervisor call
        return [sys.executable, "-m", "bench.apps.pgqueuer_app", str(self.concurrency)]
