"""taskiq + taskiq-redis: ``task.kiq()`` per job (no batch API), ``taskiq worker`` nodes.

Broker: RedisStreamBroker (consumer groups with acks, the at-least-once one of taskiq-redis).
Worker: ``taskiq worker bench.apps.taskiq_app:broker --workers 1 --max-async-tasks 8``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from bench.systems._loop import Loop
from bench.systems.base import NotSupported, System


class Adapter(System):
    name = "taskiq"
    concurrency_note = "taskiq worker --workers 1 --max-async-tasks 8, RedisStreamBroker"
    batch_note = "no batch enqueue API"

    def open(self) -> None:
        from bench.apps import taskiq_app

        self.mod = taskiq_app
        self.loop = Loop()
        self.loop.run(self.mod.broker.startup())

    def close(self) -> None:
        self.loop.run(self.mod.broker.shutdown())
        self.loop.close()

    def enqueue_single(self, n: int) -> None:
        async def go() -> None:
            for _ in range(n):
                await self.mod.noop.kiq()

        self.loop.run(go())

    def enqueue_batch(self, n: int) -> None:
        raise NotSupported(self.batch_note)

    def enqueue_probe(self, stamp: float) -> None:
        self.loop.run(self.mod.probe.kiq(stamp))

    def worker_command(self) -> list[str]:
        taskiq = str(Path(sys.executable).with_name("taskiq"))
        return [
            taskiq,
            "worker",
            "bench.apps.taskiq_app:broker",
            "--workers",
            "1",
            "--max-async-tasks",
            str(self.concurrency),
            "--log-level",
            "WARNING",
        ]
