"""Tasks for the resource tests: ``gpu.infer`` needs a gpu, ``cpu.work`` needs nothing.

Each ``gpu.infer`` run appends "start <job>" and "end <job>" lines to $RESOURCE_TEST_LOG
(O_APPEND, one write each), so the test can see whether two ever ran at once on a node.
"""

from __future__ import annotations

import os
import time

from conveyor.app import Conveyor


def _note(line: str) -> None:
    fd = os.open(os.environ["RESOURCE_TEST_LOG"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, f"{line}\n".encode())
    finally:
        os.close(fd)


def make_app(url: str | None = None) -> Conveyor:
    app = Conveyor(url)

    @app.task(name="gpu.infer", resources={"gpu": 1})
    def infer(n: int) -> str:
        _note(f"start {n}")
        time.sleep(0.3)  # the work itself: long enough that a second job would overlap it
        _note(f"end {n}")
        return os.environ.get("NODE_NAME", "")

    @app.task(name="cpu.work")
    def work(n: int) -> str:
        return os.environ.get("NODE_NAME", "")

    return app


app = make_app()
