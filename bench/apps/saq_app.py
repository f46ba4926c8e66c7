"""SAQ's benchmark settings: two async functions, concurrency 8, other settings SAQ's defaults."""

from __future__ import annotations

import os
from typing import Any

from saq import Queue

from bench.apps import record


async def noop(ctx: dict[str, Any]) -> None:
    record.done()


async def probe(ctx: dict[str, Any], *, stamp: float) -> None:
    record.pickup(stamp)


queue = Queue.from_url(os.environ.get("BENCH_URL", "redis://127.0.0.1:6379/15"), name="bench")
settings = {
    "queue": queue,
    "functions": [noop, probe],
    "concurrency": int(os.environ.get("BENCH_CONCURRENCY", "8")),
}
