"""Tasks of the scale-out benchmark (bench/scale_out.py): worker hosts load ``bench.apps.scale_app:app``.

``scale.noop`` (async, does nothing: the engine and the supervisors are the bottleneck) and
``scale.cpu`` (sync, burns ~``ms`` milliseconds of CPU in an executor process: the CPUs are).
"""

from __future__ import annotations

import os
import time

from conveyor.app import Conveyor
from conveyor.types import QueueConfig


def make_app(url: str | None) -> Conveyor:
    app = Conveyor(url, queues=[QueueConfig("scale")])

    @app.task(name="scale.noop", queue="scale")
    async def noop() -> None:
        return None

    @app.task(name="scale.cpu", queue="scale")
    def cpu(ms: float) -> int:
        end = time.process_time() + ms / 1000
        n = 0
        while time.process_time() < end:
            n += 1
        return n

    return app


app = make_app(os.environ.get("CONVEYOR_URL"))
