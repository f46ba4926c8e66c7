"""conveyor schedules: the app's periodic jobs and when each runs next (engine clock)."""

from __future__ import annotations

import typer

from conveyor.cli.common import APP_OPTION
from conveyor.cli.errors import UsageError, cli_errors
from conveyor.cli.main import app
from conveyor.cli.render import console, print_json, schedules_table
from conveyor.cli.session import opened


@app.command("schedules")
def schedules(
    app_spec: str | None = APP_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Periodic jobs declared by the app (@app.periodic / app.schedule) and their next run time."""
    with cli_errors():
        if not app_spec:
            raise UsageError("schedules are declared in code: give --app package.module:app (or set CONVEYOR_APP)")
        with opened(app_spec, None) as conveyor:
            now = conveyor.run_sync(lambda b: b.now())
            rows = [s.to_dict(now) for s in conveyor.schedules.values()]
        for row in rows:
            row["next_in"] = row["next_run"] - now
        if as_json:
            print_json(rows)
            return
        out = console()
        if not rows:
            out.print("no schedules: declare one with @app.periodic(...) or app.schedule(...)")
            return
        out.print(schedules_table(rows))
