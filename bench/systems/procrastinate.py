"""procrastinate: ``defer_async`` per job, ``batch_defer_async`` per batch, ``procrastinate worker`` nodes.

Worker: ``procrastinate --app bench.apps.procrastinate_app.app worker --queues bench --concurrency 8``
(LISTEN/NOTIFY on, its default; finished jobs kept in procrastinate_jobs, its default).
"""

from __future__ import annotations

import sys

from bench.systems._loop import Loop
from bench.systems.base import QUEUE, System


class Adapter(System):
    name = "procrastinate"
    concurrency_note = "procrastinate worker --concurrency 8 per node (async tasks), LISTEN/NOTIFY"
    batch_note = "task.batch_defer_async, 500 jobs per call"

    def open(self) -> None:
        from bench.apps import procrastinate_app

        # the module reads BENCH_URL at import; point its connector at this phase's database
        procrastinate_app.app.connector.__init__(conninfo=self.url)  # type: ignore[misc]
        self.mod = procrastinate_app
        self.loop = Loop()
        self.loop.run(self.mod.app.open_async())
        self.loop.run(self.mod.app.schema_manager.apply_schema_async())

    def close(self) -> None:
        self.loop.run(self.mod.app.close_async())
        self.loop.close()

    def enqueue_single(self, n: int) -> None:
        async def go() -> None:
            for _ in range(n):
                await self.mod.noop.defer_async()

        self.loop.run(go())

    def enqueue_batch(self, n: int) -> None:
        self.loop.run(self.mod.noop.batch_defer_async(*({} for _ in range(n))))

    def enqueue_probe(self, stamp: float) -> None:
        self.loop.run(self.mod.probe.defer_async(stamp=stamp))

    def worker_command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "procrastinate",
            "--app",
            "bench.apps.procrastinate_app.app",
            "worker",
            "--queues",
            QUEUE,
            "--concurrency",
            str(self.concurrency),
        ]
