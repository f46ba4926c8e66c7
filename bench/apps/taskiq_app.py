"""taskiq's benchmark broker: taskiq-redis RedisStreamBroker (acknowledged, at-least-once), no result backend."""

from __future__ import annotations

import os

from taskiq_redis import RedisStreamBroker

from bench.apps import record

broker = RedisStreamBroker(os.environ.get("BENCH_URL", "redis://127.0.0.1:6379/15"), queue_name="bench")


@broker.task(task_name="noop")
async def noop() -> None:
    record.done()


@broker.task(task_name="probe")
async def probe(stamp: float) -> None:
    record.pickup(stamp)
