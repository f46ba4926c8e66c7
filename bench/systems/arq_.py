"""arq: ``ArqRedis.enqueue_job`` per job (no batch API), ``arq`` worker nodes.

Worker: ``arq bench.apps.arq_app.WorkerSettings`` with max_jobs 8; arq polls the queue every
0.5 s when idle (``poll_delay``, its default) and keeps results for an hour (its default).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from bench.systems._loop import Loop
from bench.systems.base import QUEUE, NotSupported, System


class Adapter(System):
    name = "arq"
    concurrency_note = "arq WorkerSettings max_jobs=8, poll_delay 0.5 s (default)"
    batch_note = "no batch enqueue API"

    def open(self) -> None:
        from arq import create_pool
        from arq.connections import RedisSettings

        self.loop = Loop()
        self.pool: Any = self.loop.run(create_pool(RedisSettings.from_dsn(self.url), default_queue_name=QUEUE))

    def close(self) -> None:
        self.loop.run(self.pool.aclose())
        self.loop.close()

    def enqueue_single(self, n: int) -> None:
        async def go() -> None:
            for _ in range(n):
                await self.pool.enqueue_job("noop")

        self.loop.run(go())

    def enqueue_batch(self, n: int) -> None:
        raise NotSupported(self.batch_note)

    def enqueue_probe(self, stamp: float) -> None:
        self.loop.run(self.pool.enqueue_job("probe", stamp))

    def worker_command(self) -> list[str]:
        return [str(Path(sys.executable).with_name("arq")), "bench.apps.arq_app.WorkerSettings"]
