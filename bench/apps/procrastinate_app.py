"""procrastinate's benchmark app (async tasks, PsycopgConnector; finished jobs stay in the table, its default)."""

from __future__ import annotations

import os

import procrastinate

from bench.apps import record

app = procrastinate.App(
    connector=procrastinate.PsycopgConnector(conninfo=os.environ.get("BENCH_URL", "postgresql:///postgres"))
)


@app.task(name="noop", queue="bench")
async def noop() -> None:
    record.done()


@app.task(name="probe", queue="bench")
async def probe(stamp: float) -> None:
    record.pickup(stamp)
