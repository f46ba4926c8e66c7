"""Dramatiq: ``actor.send()`` per job, ``group(...).run()`` per batch, ``dramatiq`` nodes.

Worker: ``dramatiq bench.apps.dramatiq_app --processes 1 --threads 8 --queues bench`` (one worker
process with 8 threads per node; Dramatiq's default middleware).
"""

from __future__ import annotations

import sys
from pathlib import Path

from bench.systems.base import QUEUE, System


class Adapter(System):
    name = "dramatiq"
    concurrency_note = "dramatiq --processes 1 --threads 8 per node"
    batch_note = "no bulk API; group(...).run() of 500 messages per call"

    def open(self) -> None:
        from bench.apps import dramatiq_app

        self.mod = dramatiq_app

    def close(self) -> None:
        self.mod.broker.close()

    def enqueue_single(self, n: int) -> None:
        send = self.mod.noop.send
        for _ in range(n):
            send()

    def enqueue_batch(self, n: int) -> None:
        from dramatiq import group

        group(self.mod.noop.message() for _ in range(n)).run()

    def enqueue_probe(self, stamp: float) -> None:
        self.mod.probe.send(stamp)

    def worker_command(self) -> list[str]:
        dramatiq = str(Path(sys.executable).with_name("dramatiq"))
        return [
            dramatiq,
            "bench.apps.dramatiq_app",
            "--processes",
            "1",
            "--threads",
            str(self.concurrency),
            "--queues",
            QUEUE,
        ]
