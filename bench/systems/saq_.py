"""SAQ: ``Queue.enqueue`` per job (no batch enqueue: ``map`` also waits for results), ``saq`` nodes.

Worker: ``saq bench.apps.saq_app.settings --workers 1`` with concurrency 8.
"""

from __future__ import annotations

import sys
from pathlib import Path

from bench.systems._loop import Loop
from bench.systems.base import NotSupported, System


class Adapter(System):
    name = "saq"
    concurrency_note = "saq --workers 1, settings concurrency=8"
    batch_note = "no batch enqueue API (Queue.map enqueues and then waits for every result)"

    def open(self) -> None:
        from saq import Queue

        self.loop = Loop()
        self.queue = Queue.from_url(self.url, name="bench")
        self.loop.run(self.queue.connect())

    def close(self) -> None:
        self.loop.run(self.queue.disconnect())
        self.loop.close()

    def enqueue_single(self, n: int) -> None:
        async def go() -> None:
            for _ in range(n):
                await self.queue.enqueue("noop")

        self.loop.run(go())

    def enqueue_batch(self, n: int) -> None:
        raise NotSupported(self.batch_note)

    def enqueue_probe(self, stamp: float) -> None:
        self.loop.run(self.queue.enqueue("probe", stamp=stamp))

    def worker_command(self) -> list[str]:
        return [str(Path(sys.executable).with_name("saq")), "bench.apps.saq_app.settings", "--workers", "1"]
