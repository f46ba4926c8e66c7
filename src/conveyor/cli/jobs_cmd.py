"""conveyor jobs ls | show | cancel, and the registration of submit, dlq and queues.

These commands talk to the engine directly (``--app`` or ``--url``), as an operator with a
view over every tenant. ``conveyor.cli.main`` imports only this module of the jobs CLI, so
it pulls in the sibling command modules too.
"""

from __future__ import annotations

import typer
from rich.markup import escape

from conveyor.cli import ops_cmd, submit_cmd
from conveyor.cli.common import APP_OPTION, URL_OPTION
from conveyor.cli.errors import UsageError, cli_errors
from conveyor.cli.main import app
from conveyor.cli.parsing import parse_states
from conveyor.cli.render import (
    console,
    error_summary,
    events_table,
    job_detail,
    job_dict,
    jobs_table,
    print_json,
    size,
)
from conveyor.cli.session import check_limit, get_job, opened
from conveyor.types import JobEvent

__all__ = ["jobs", "ops_cmd", "submit_cmd"]

RECENT_EVENTS = 20
HISTORY_LIMIT = 100_000
"""Events read to show the most recent ones (a job's history is read oldest first)."""

jobs = typer.Typer(help="List, inspect and cancel jobs.", no_args_is_help=True)
app.add_typer(jobs, name="jobs")

JSON_OPTION = typer.Option(False, "--json", help="Print JSON instead of a table.")


@jobs.command("ls")
def list_jobs(
    state: list[str] | None = typer.Option(None, "--state", "-s", help="Filter by state (repeat, or a,b)."),
    queue: str | None = typer.Option(None, "--queue", "-q"),
    task: str | None = typer.Option(None, "--task", "-t"),
    limit: int = typer.Option(50, "--limit", "-n", help="At most this many jobs, newest first."),
    cursor: str | None = typer.Option(None, "--cursor", help="Continue after this id (printed by the previous page)."),
    as_json: bool = JSON_OPTION,
    app_spec: str | None = APP_OPTION,
    url: str | None = URL_OPTION,
) -> None:
    """List jobs, newest first."""
    with cli_errors():
        states = parse_states(state)
        check_limit(limit)
        with opened(app_spec, url) as conveyor:
            page = conveyor.list_jobs(states=states, queue=queue, task=task, limit=limit, cursor=cursor)
        if as_json:
            print_json({"jobs": [job_dict(j) for j in page.jobs], "next_cursor": page.next_cursor})
            return
        out = console()
        if not page.jobs:
            out.print("no jobs match")
            return
        out.print(jobs_table(page.jobs))
        if page.next_cursor:
            out.print(f"[dim]more: --cursor {page.next_cursor}[/]")


@jobs.command("show")
def show(
    job_id: str = typer.Argument(..., metavar="ID"),
    events: int = typer.Option(RECENT_EVENTS, "--events", help="How many recent events to show (0: none)."),
    as_json: bool = JSON_OPTION,
    app_spec: str | None = APP_OPTION,
    url: str | None = URL_OPTION,
) -> None:
    """Everything about one job: fields, progress, result or error, artifacts, recent events."""
    with cli_errors():
        if events < 0:
            raise UsageError("--events must not be negative")
        with opened(app_spec, url) as conveyor:
            job = get_job(conveyor, job_id)
            position = conveyor.queue_position(job_id)
            history: list[JobEvent] = []
            if events:
                history = conveyor.events(job_id, 0, HISTORY_LIMIT)[-events:]
        if as_json:
            data = job_dict(job)
            data["queue_position"] = position
            data["events"] = [
                {"seq": e.seq, "at": e.at, "type": e.type, "state": e.state.value, "data": e.data} for e in history
            ]
            print_json(data)
            return
        out = console()
        out.print(job_detail(job, position))
        if job.error:
            out.print()
            out.print("[bold red]error[/] " + escape(error_summary(job.error)))
            trace = job.error.get("traceback")
            if trace:
                out.print(str(trace).rstrip(), style="dim", markup=False)
        if job.artifacts:
            out.print()
            out.print("[bold]artifacts[/]")
            for art in job.artifacts:
                line = f"  {art.name}  {size(art.size)}  {art.content_type}  {art.location}"
                out.print(line, markup=False, soft_wrap=True)
        if history:
            out.print()
            out.print(events_table(history))


@jobs.command("cancel")
def cancel(
    job_id: str = typer.Argument(..., metavar="ID"),
    app_spec: str | None = APP_OPTION,
    url: str | None = URL_OPTION,
) -> None:
    """Cancel a job that has not finished; a running one is stopped by its worker."""
    with cli_errors(), opened(app_spec, url) as conveyor:
        job = conveyor.cancel(job_id)
        typer.echo(f"canceled {job.id} ({job.task})")
