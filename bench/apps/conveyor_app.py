"""Conveyor's benchmark app: an async no-op and an async pickup probe, on queue "bench".

Async tasks run in the worker's event loop, like arq, SAQ, taskiq, streaq, procrastinate and
pgqueuer tasks. The sync variant lives in its own app (conveyor_sync_app): a node whose app
has sync tasks sizes its claims by its executor processes, which would cap this variant.
"""

from __future__ import annotations

import os

from bench.apps import record
from conveyor.app import Conveyor

app = Conveyor(os.environ.get("BENCH_URL") or "sqlite:///var/bench.db")


@app.task(name="bench.noop", queue="bench")
async def noop() -> None:
    record.done()


@app.task(name="bench.probe", queue="bench")
async def probe(stamp: float) -> None:
    record.pickup(stamp)
