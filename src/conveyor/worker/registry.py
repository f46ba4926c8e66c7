"""The node's entry in the engine's worker registry: a beat every few seconds, gone on exit.

Each beat replaces the node's ``info`` (host, pid, queues, concurrency, jobs in flight,
version), so ``conveyor workers``, ``/v1/workers`` and the dashboard show every node of the
fleet from any machine. A node that stops cleanly removes itself; one that dies is shown dead
once it misses its beats (``conveyor.fleet``) and forgotten by maintenance after a while.
A failed beat (engine down for a moment) is logged and retried next interval: registration is
information, never a reason to stop working.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable
from typing import Any

from conveyor.backend.protocol import Backend, ForgetWorkersRequest, WorkerBeat
from conveyor.worker.logs import log

NodeInfo = Callable[[], dict[str, Any]]


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("conveyor")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown"


def static_info(beat_interval: float) -> dict[str, Any]:
    """What does not change while the node lives."""
    return {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "version": version(),
        "beat_interval": beat_interval,
        "node_started_at": time.time(),
    }


class NodeRegistry:
    def __init__(self, backend: Backend, worker_id: str, interval: float, dynamic: NodeInfo) -> None:
        self.backend = backend
        self.worker_id = worker_id
        self.interval = interval
        self.dynamic = dynamic
        self._static = static_info(interval)

    def info(self) -> dict[str, Any]:
        return {**self._static, **self.dynamic()}

    async def beat(self) -> None:
        await self.backend.beat_worker(WorkerBeat(self.worker_id, self.info()))

    async def run(self) -> None:
        """Beat every ``interval`` seconds until canceled."""
        while True:
            try:
                await self.beat()
            except Exception as exc:  # engine down for a moment: the next beat catches up
                log("worker.registry_error", logging.WARNING, error=f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(self.interval)

    async def leave(self) -> None:
        """Remove the node's entry (a clean stop); a failure leaves it to age out as dead."""
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.backend.forget_workers(ForgetWorkersRequest(worker_id=self.worker_id)), 5.0)
