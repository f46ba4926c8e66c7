"""Conveyor: ``app.enqueue`` per job, the engine's ``enqueue_many`` per batch, ``conveyor worker`` nodes.

Two variants: ``conveyor`` measures an async no-op (runs in the worker's event loop, like the
asyncio libraries), ``conveyor-sync`` a plain ``def`` no-op (runs in executor child processes,
like Celery's prefork pool). Either way 8 jobs in flight per worker node.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

from bench.systems.base import QUEUE, System


class ConveyorSystem(System):
    name = "conveyor"
    redis_prefixed = True
    noop_task = "bench.noop"
    probe_task = "bench.probe"
    app_spec = "bench.apps.conveyor_app:app"
    concurrency_note = (
        "conveyor worker --concurrency 1 --async-concurrency 8 per node; async task in the supervisor's loop"
    )
    batch_note = "engine enqueue_many, 500 jobs per call (one transaction / one script)"

    def open(self) -> None:
        module, _, attr = self.app_spec.partition(":")
        self.app: Any = getattr(importlib.import_module(module), attr)
        self.app.url = self.conveyor_url()
        self.app.run_sync(lambda b: b.ping())  # opens the engine (and migrates) outside the timed part

    def close(self) -> None:
        self.app.close()

    def conveyor_url(self) -> str:
        return self.url if self.engine != "redis" else f"{self.url}?prefix={self.redis_prefix}"

    def worker_env(self) -> dict[str, str]:
        return super().worker_env() | {"BENCH_URL": self.conveyor_url()}

    def enqueue_single(self, n: int) -> None:
        enqueue = self.app.enqueue
        for _ in range(n):
            enqueue(self.noop_task, {})

    def enqueue_batch(self, n: int) -> None:
        requests = [self.app.build_request(self.noop_task, {}) for _ in range(n)]
        self.app.run_sync(lambda b: b.enqueue_many(requests))

    def enqueue_probe(self, stamp: float) -> None:
        self.app.enqueue(self.probe_task, {"stamp": stamp})

    def worker_command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "conveyor",
            "worker",
            "--app",
            self.app_spec,
            "--queues",
            QUEUE,
            *self.concurrency_args(),
            "--log-level",
            "warning",  # per-job INFO lines off, as for every CLI that offers it
        ]

    def concurrency_args(self) -> list[str]:
        # async jobs run in the supervisor's loop; keep one executor process, the minimum a node has
        return ["--concurrency", "1", "--async-concurrency", str(self.concurrency)]

    def add_history(self, n: int) -> None:
        from bench.systems.conveyor_history import add_history

        add_history(self.app, self.engine, self.url, n)


class ConveyorSyncSystem(ConveyorSystem):
    name = "conveyor-sync"
    noop_task = "bench.noop_sync"
    probe_task = "bench.probe_sync"
    app_spec = "bench.apps.conveyor_sync_app:app"
    concurrency_note = "conveyor worker --concurrency 8 per node; sync task in 8 executor child processes"

    def concurrency_args(self) -> list[str]:
        return ["--concurrency", str(self.concurrency)]


ADAPTERS: dict[str, type[System]] = {"conveyor": ConveyorSystem, "conveyor-sync": ConveyorSyncSystem}
