"""streaq's benchmark worker: two async tasks, concurrency 8, other settings streaq's defaults."""

from __future__ import annotations

import os

from streaq import Worker

from bench.apps import record

worker = Worker(
    redis_url=os.environ.get("BENCH_URL", "redis://127.0.0.1:6379/15"),
    queue_name="bench",
    concurrency=int(os.environ.get("BENCH_CONCURRENCY", "8")),
)


@worker.task
async def noop() -> None:
    record.done()


@worker.task
async def probe(stamp: float) -> None:
    record.pickup(stamp)
