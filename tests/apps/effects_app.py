"""The task of the fenced-effect fault test: a once-only effect a test can pause a node around.

``effects.gated_charge`` logs each step to ``log`` (one JSON line: step, attempt, node, pid) and
waits for the file ``gate`` at the point ``hold`` names: ``before_once`` (before ``ctx.once``)
or ``inside_effect`` (after ``once`` found no record, before the effect records). The test
freezes the node there, lets another node take the job over, then resumes the first one.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from conveyor.app import Conveyor
from conveyor.context import JobContext
from conveyor.errors import LeaseLost
from tests.apps.basic import FAST_RETRY, _append


def make_app(url: str | None = None, results: str | None = None) -> Conveyor:
    app = Conveyor(url, result_store=results)

    @app.task(name="effects.gated_charge", retry=FAST_RETRY)
    def gated_charge(log: str, gate: str, hold: str, ctx: JobContext) -> dict[str, Any]:
        me = {"attempt": ctx.attempt, "worker": ctx.job.worker_id}

        def step(name: str, **data: Any) -> None:
            _append(log, json.dumps({"step": name, "pid": os.getpid(), **me, **data}))

        def wait_for_gate() -> None:
            step("held")
            deadline = time.monotonic() + 120  # the test opens the gate long before this
            while not os.path.exists(gate) and time.monotonic() < deadline:
                time.sleep(0.02)

        def charge() -> dict[str, Any]:
            if hold == "inside_effect":
                wait_for_gate()
            step("effect")
            return me

        if hold == "before_once":
            wait_for_gate()
        try:
            value = ctx.once("charge", charge)
        except LeaseLost:
            step("refused")
            raise
        step("returned", value=value)
        return value

    return app


app = make_app()
