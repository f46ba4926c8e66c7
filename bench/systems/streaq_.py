"""streaq: ``task.enqueue()`` per job, ``Worker.enqueue_many`` per batch, ``streaq run`` nodes.

Worker: ``streaq run bench.apps.streaq_app:worker`` with concurrency 8 (Redis streams).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from bench.systems._loop import Loop
from bench.systems.base import System


class Adapter(System):
    name = "streaq"
    concurrency_note = "streaq run, Worker(concurrency=8)"
    batch_note = "Worker.enqueue_many (one pipeline), 500 jobs per call"

    def open(self) -> None:
        from bench.apps import streaq_app

        self.mod = streaq_app
        self.loop = Loop()
        self.ctx: Any = self.mod.worker
        self.loop.run(self.ctx.__aenter__())

    def close(self) -> None:
        self.loop.run(self.ctx.__aexit__(None, None, None))
        self.loop.close()

    def enqueue_single(self, n: int) -> None:
        async def go() -> None:
            for _ in range(n):
                await self.mod.noop.enqueue()

        self.loop.run(go())

    def enqueue_batch(self, n: int) -> None:
        self.loop.run(self.mod.worker.enqueue_many([self.mod.noop.enqueue() for _ in range(n)]))

    def enqueue_probe(self, stamp: float) -> None:
        async def go() -> None:
            await self.mod.probe.enqueue(stamp)

        self.loop.run(go())

    def worker_command(self) -> list[str]:
        return [str(Path(sys.executable).with_name("streaq")), "run", "bench.apps.streaq_app:worker"]
