"""Conveyor's benchmark app with plain ``def`` tasks: they run in executor child processes,
like Celery's prefork pool (the ``conveyor-sync`` system)."""

from __future__ import annotations

import os

from bench.apps import record
from conveyor.app import Conveyor

app = Conveyor(os.environ.get("BENCH_URL") or "sqlite:///var/bench.db")


@app.task(name="bench.noop_sync", queue="bench")
def noop_sync() -> None:
    record.done()


@app.task(name="bench.probe_sync", queue="bench")
def probe_sync(stamp: float) -> None:
    record.pickup(stamp)
