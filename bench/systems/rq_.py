"""RQ: ``Queue.enqueue`` per job, ``Queue.enqueue_many`` per batch, ``rq worker`` nodes.

Worker: ``rq worker bench --url URL`` — RQ's default worker runs one job at a time and forks a
work horse per job; it has no concurrency setting (so "concurrency 8" does not apply to RQ).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from bench.systems.base import QUEUE, System


class Adapter(System):
    name = "rq"
    concurrency_note = "rq worker (default Worker: one job at a time, fork per job; no concurrency option)"
    batch_note = "Queue.enqueue_many (one pipeline), 500 jobs per call"

    def open(self) -> None:
        from redis import Redis
        from rq import Queue

        self.redis: Any = Redis.from_url(self.url)
        self.queue = Queue(QUEUE, connection=self.redis)

    def close(self) -> None:
        self.redis.close()

    def enqueue_single(self, n: int) -> None:
        from bench.apps.rq_app import noop

        for _ in range(n):
            self.queue.enqueue(noop)

    def enqueue_batch(self, n: int) -> None:
        from rq import Queue

        from bench.apps.rq_app import noop

        self.queue.enqueue_many([Queue.prepare_data(noop) for _ in range(n)])

    def enqueue_probe(self, stamp: float) -> None:
        from bench.apps.rq_app import probe

        self.queue.enqueue(probe, stamp)

    def worker_command(self) -> list[str]:
        rq = str(Path(sys.executable).with_name("rq"))
        return [rq, "worker", QUEUE, "--url", self.url, "--logging_level", "WARNING"]
