"""A periodic task for the cron tests: ``periodic.tick`` every second, on every worker node.

Worker nodes load ``tests.apps.periodic:app`` (engine URL from $CONVEYOR_URL); the test calls
``make_app(url)`` for an app bound to its own store.
"""

from __future__ import annotations

from conveyor.app import Conveyor
from conveyor.context import JobContext


def make_app(url: str | None = None) -> Conveyor:
    app = Conveyor(url)

    @app.periodic(every=1.0, name="every-second", task_name="periodic.tick")
    def tick(ctx: JobContext) -> str | None:
        return ctx.job.idempotency_key

    @app.task(name="periodic.report")
    def report(day: str) -> str:
        return day

    app.schedule(report, "30 6 * * 1-5", tz="Europe/Paris", args={"day": "weekday"}, name="morning-report")
    return app


app = make_app()
