"""A task with a per-key concurrency limit, for tests that run it on real worker nodes.

``limits.print_job`` allows one running job per printer (the reader's one-job-per-printer
case); the engine URL comes from $CONVEYOR_URL, as in ``tests.apps.basic``.
"""

from __future__ import annotations

import asyncio

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

    return app


app = make_app()
