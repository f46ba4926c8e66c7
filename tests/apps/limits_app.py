"""A task with a per-key concurrency limit, for tests that run it on real worker nodes.

``limits.print_job`` allows one running job per printer (the reader's one-job-per-printer
case); the engine URL comes from $CONVEYOR_URL, as in ``tests.apps.basic``.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import time
from pathlib import Path

from conveyor.app import Conveyor

QUEUE = "printers"


def make_app(url: str | None = None) -> Conveyor:
    app = Conveyor(url)

    @app.task(
        name="limits.print_job",
        queue=QUEUE,
        concurrency=1,
        concurrency_key=lambda args: f"printer:{args['printer']}",
        max_attempts=5,
    )
    async def print_job(printer: int, seconds: float) -> int:
        await asyncio.sleep(seconds)
        return printer

    @app.task(
        name="limits.exclusive",
        queue=QUEUE,
        concurrency=1,
        concurrency_key=lambda args: f"printer:{args['printer']}",
        max_attempts=5,
    )
    def exclusive(printer: int, seconds: float, state_dir: str) -> int:
        """Counts how many jobs of this printer run at this moment, in any process, and keeps
        the highest count seen in ``<state_dir>/<printer>.json``."""
        path = Path(state_dir) / f"{printer}.json"
        _update(path, +1)
        time.sleep(seconds)
        _update(path, -1)
        return os.getpid()

    return app


def _update(path: Path, delta: int) -> None:
    with open(path.with_suffix(".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        state = json.loads(path.read_text()) if path.exists() else {"now": 0, "max": 0, "runs": 0}
        state["now"] += delta
        state["max"] = max(state["max"], state["now"])
        state["runs"] += delta > 0
        path.write_text(json.dumps(state))


app = make_app()
