"""Celery's benchmark app: Redis broker, no result backend (Celery's default), two plain tasks."""

from __future__ import annotations

import os

from celery import Celery

from bench.apps import record

app = Celery("bench", broker=os.environ.get("BENCH_URL", "redis://127.0.0.1:6379/15"))
app.conf.task_default_queue = "bench"
app.conf.broker_connection_retry_on_startup = True


@app.task(name="noop")
def noop() -> None:
    record.done()


@app.task(name="probe")
def probe(stamp: float) -> None:
    record.pickup(stamp)
