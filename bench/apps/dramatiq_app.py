"""Dramatiq's benchmark actors on a RedisBroker (no results middleware, Dramatiq's default)."""

from __future__ import annotations

import os

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from bench.apps import record

broker = RedisBroker(url=os.environ.get("BENCH_URL", "redis://127.0.0.1:6379/15"))
dramatiq.set_broker(broker)


@dramatiq.actor(queue_name="bench", max_retries=0)
def noop() -> None:
    record.done()


@dramatiq.actor(queue_name="bench", max_retries=0)
def probe(stamp: float) -> None:
    record.pickup(stamp)
