"""arq's benchmark worker settings: two async functions, max_jobs 8, other settings arq's defaults."""

from __future__ import annotations

import os
from typing import Any

from arq.connections import RedisSettings

from bench.apps import record


async def noop(ctx: dict[str, Any]) -> None:
    record.done()


async def probe(ctx: dict[str, Any], stamp: float) -> None:
    record.pickup(stamp)


class WorkerSettings:
    functions = [noop, probe]
    redis_settings = RedisSettings.from_dsn(os.environ.get("BENCH_URL", "redis://127.0.0.1:6379/15"))
    queue_name = "bench"
    max_jobs = int(os.environ.get("BENCH_CONCURRENCY", "8"))
