"""Celery: ``task.delay()`` per job, ``group(...).apply_async()`` per batch, ``celery worker`` nodes.

Worker: ``celery -A bench.apps.celery_app worker -Q bench -c 8 -l WARNING`` (prefork pool, its
default, so 8 child processes per node; prefetch multiplier 4, acks early: Celery's defaults).
"""

from __future__ import annotations

import sys
from pathlib import Path

from bench.systems.base import QUEUE, System


class Adapter(System):
    name = "celery"
    concurrency_note = "celery worker -c 8 (prefork: 8 child processes per node), defaults otherwise"
    batch_note = "no bulk publish API; group(...).apply_async() of 500 signatures per call"

    def open(self) -> None:
        from bench.apps import celery_app

        self.mod = celery_app
        self.mod.app.conf.broker_url = self.url

    def close(self) -> None:
        self.mod.app.close()

    def enqueue_single(self, n: int) -> None:
        delay = self.mod.noop.delay
        for _ in range(n):
            delay()

    def enqueue_batch(self, n: int) -> None:
        from celery import group

        group(self.mod.noop.s() for _ in range(n)).apply_async()

    def enqueue_probe(self, stamp: float) -> None:
        self.mod.probe.delay(stamp)

    def worker_command(self) -> list[str]:
        celery = str(Path(sys.executable).with_name("celery"))
        return [
            celery,
            "-A",
            "bench.apps.celery_app",
            "worker",
            "-Q",
            QUEUE,
            "-c",
            str(self.concurrency),
            "-l",
            "WARNING",
        ]
