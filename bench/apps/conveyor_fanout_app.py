"""The fan-out benchmark's app: async chunk and fan-in tasks that do nothing but return.

Async, so a chunk costs its engine round trips and not an executor process's overhead: the
benchmark measures how fast the engine releases the fan-in after the last chunk, not Python.
"""

from __future__ import annotations

import os

from conveyor.app import Conveyor
from conveyor.context import JobContext

app = Conveyor(os.environ.get("BENCH_URL") or "sqlite:///var/bench-fanout.db")


@app.task(name="fanout.chunk", queue="fanout")
async def chunk(items: list[int]) -> int:
    return len(items)


@app.task(name="fanout.total", queue="fanout")
async def total(ctx: JobContext) -> int:
    return sum(d.result for d in ctx.dependencies if d.succeeded)
