"""The node's periodic INFO summary, which replaces a log line per job.

Two INFO lines per job filled ~5 MB of logs per 20,000-job drain. Per-job lines (``job.start``,
a successful ``job.finish``) are DEBUG now; failures, retries, refusals and stops stay at
WARNING/ERROR. This module counts the attempts the node ended (from the app's ``JobEnded``
telemetry) and logs ``worker.summary`` every ``interval`` seconds when jobs ended meanwhile,
and once more with the node's totals when it stops.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from conveyor.telemetry import Event, JobEnded, Telemetry
from conveyor.worker.logs import log

SUMMARY_INTERVAL = 60.0
"""Default seconds between two summary lines (``--summary-interval``)."""


@dataclass
class Tally:
    """Attempts ended in one window: how they ended and how long they ran in total."""

    succeeded: int = 0
    failed: int = 0
    retried: int = 0
    run_seconds: float = 0.0

    @property
    def jobs(self) -> int:
        return self.succeeded + self.failed + self.retried

    def add(self, event: JobEnded) -> None:
        if event.outcome == "succeeded":
            self.succeeded += 1
        elif event.outcome == "failed":
            self.failed += 1
        else:
            self.retried += 1
        self.run_seconds += event.run_seconds or 0.0

    def fields(self) -> dict[str, Any]:
        mean = self.run_seconds / self.jobs if self.jobs else 0.0
        return {"succeeded": self.succeeded, "failed": self.failed, "retried": self.retried, "mean_run_s": mean}


class Summary:
    """Counts the attempts this node ended and logs them as ``worker.summary`` lines."""

    def __init__(self, telemetry: Telemetry, worker_id: str, interval: float = SUMMARY_INTERVAL) -> None:
        self.worker_id = worker_id
        self.interval = interval
        self.window = Tally()
        self.total = Tally()
        self._detach = telemetry.attach(self._on_event)

    def _on_event(self, event: Event) -> None:
        # Only the attempts a node ran carry run_seconds (a cancel from a client does not).
        if isinstance(event, JobEnded) and event.run_seconds is not None and event.outcome != "canceled":
            self.window.add(event)
            self.total.add(event)

    def flush(self) -> None:
        """Log the window's counts (nothing when no job ended in it) and start a new window."""
        if self.window.jobs:
            log("worker.summary", id=self.worker_id, window_s=self.interval, **self.window.fields())
        self.window = Tally()

    async def run(self) -> None:
        """Log a summary every ``interval`` seconds until canceled."""
        while True:
            await asyncio.sleep(self.interval)
            self.flush()

    def close(self) -> None:
        """Stop counting and log the node's totals (called once, when the node stops)."""
        self._detach()
        log("worker.summary", id=self.worker_id, final=True, **self.total.fields())
