"""conveyor workflows show|cancel: a workflow as a whole, locally (--app/--url) or over HTTP (--server).

``show`` draws a table of the steps (state, progress, dependencies by step name, error) under an
aggregate progress bar; ``--wait`` redraws it until every step ended. The exit code is the
outcome: 0 succeeded, 1 failed, 3 canceled, 4 still running when ``--timeout`` elapsed (and,
without ``--wait``, 5 while the workflow is still running).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import typer
from rich.console import Group, RenderableType
from rich.live import Live
from rich.markup import escape
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from conveyor.api.schemas import WorkflowView
from conveyor.cli.common import APP_OPTION, URL_OPTION
from conveyor.cli.errors import UsageError, cli_errors
from conveyor.cli.main import app
from conveyor.cli.parsing import parse_duration
from conveyor.cli.progress import EXIT_CANCELED, EXIT_FAILED, EXIT_SUCCEEDED, EXIT_TIMEOUT
from conveyor.cli.render import console, error_summary, styled_state
from conveyor.cli.session import opened

EXIT_RUNNING = 5
"""``show`` without ``--wait`` of a workflow that has not ended yet."""
POLL_SECONDS = 0.5

workflows = typer.Typer(help="Show and cancel workflows (jobs enqueued together).", no_args_is_help=True)
app.add_typer(workflows, name="workflows")

SERVER_OPTION = typer.Option(
    None, "--server", envvar="CONVEYOR_SERVER", help="Ask this job service instead, e.g. http://127.0.0.1:8000."
)
API_KEY_OPTION = typer.Option(None, "--api-key", envvar="CONVEYOR_API_KEY", help="API key for --server.")
Reader = Callable[[], WorkflowView]


def outcome_code(view: WorkflowView) -> int:
    return {"succeeded": EXIT_SUCCEEDED, "failed": EXIT_FAILED, "canceled": EXIT_CANCELED}.get(view.state, EXIT_RUNNING)


def workflow_table(view: WorkflowView) -> RenderableType:
    """The aggregate bar, the counts, and one row per step (dependencies by step name)."""
    names = {s.id: s.step or s.id[:13] for s in view.steps}
    table = Table(show_edge=False, header_style="bold")
    for column in ("Step", "Task", "State", "Progress", "Depends on", "Job", "Error"):
        table.add_column(column, overflow="fold")
    for s in view.steps:
        fraction = 1.0 if s.state.value == "succeeded" else (s.progress.fraction if s.progress else None)
        progress = "" if fraction is None else f"{fraction * 100:.0f} %"
        if s.progress and s.progress.message and s.state.value == "running":
            progress += f" {s.progress.message}"
        deps = ", ".join(names.get(d, d[:13]) for d in s.depends_on)
        error = error_summary(s.error.model_dump()) if s.error else ""
        table.add_row(
            escape(s.step or "-"),
            escape(s.task),
            styled_state(s.state),
            escape(progress),
            escape(deps),
            s.id,
            Text(error, style="red"),
        )
    counts = ", ".join(f"{n} {state}" for state, n in view.counts.items() if n)
    head = Text.from_markup(
        f"workflow {escape(view.id)}: {styled_state(view.state)} — {len(view.steps)} steps ({counts})"
    )
    bar = Table.grid(padding=(0, 1))
    bar.add_row(ProgressBar(total=1.0, completed=view.progress, width=40), f"{view.progress * 100:.0f} %")
    return Group(head, bar, table)


@contextmanager
def reader(
    workflow_id: str, server: str | None, api_key: str | None, app_spec: str | None, url: str | None
) -> Iterator[Reader]:
    """A function that reads the workflow now, from the engine or from the job service."""
    if server:
        from conveyor.client import ConveyorClient

        with ConveyorClient(server, api_key=api_key) as client:
            yield lambda: client.workflow(workflow_id)
        return
    with opened(app_spec, url) as conveyor:

        def local() -> WorkflowView:
            found = conveyor.workflow(workflow_id)
            if found is None:
                raise UsageError(f"no workflow with id {workflow_id!r}")
            return WorkflowView.from_status(found, internals=True)

        yield local


def follow(read: Reader, timeout: float | None) -> tuple[WorkflowView, bool]:
    """Redraw the workflow until it ended or ``timeout`` passed; (last view, timed out)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    view = read()
    with Live(workflow_table(view), console=console(stderr=True), auto_refresh=False) as live:
        while not view.terminal:
            if deadline is not None and time.monotonic() >= deadline:
                return view, True
            time.sleep(POLL_SECONDS)
            view = read()
            live.update(workflow_table(view), refresh=True)
    return view, False


@workflows.command("show")
def show(
    workflow_id: str = typer.Argument(..., help="Workflow id (printed by submit --from-file, or a job's workflow_id)."),
    wait: bool = typer.Option(False, "--wait", "-w", help="Redraw until every step ended."),
    timeout: str | None = typer.Option(None, "--timeout", help="With --wait: give up after this long (exit 4)."),
    app_spec: str | None = APP_OPTION,
    url: str | None = URL_OPTION,
    server: str | None = SERVER_OPTION,
    api_key: str | None = API_KEY_OPTION,
) -> None:
    """Show a workflow's steps, states and aggregate progress; the exit code is its outcome."""
    with cli_errors():
        timeout_s = parse_duration(timeout, "--timeout")
        if timeout_s is not None and not wait:
            raise UsageError("--timeout only applies with --wait")
        if server and app_spec:
            raise UsageError("give either --app/--url (the engine) or --server (a job service), not both")
        code = print_workflow(workflow_id, server, api_key, app_spec, url, wait, timeout_s)
    raise typer.Exit(code)


def print_workflow(
    workflow_id: str,
    server: str | None,
    api_key: str | None,
    app_spec: str | None,
    url: str | None,
    wait: bool,
    timeout: float | None,
) -> int:
    """Show (and with ``wait`` follow) the workflow; the exit code of its outcome."""
    with reader(workflow_id, server, api_key, app_spec, url) as read:
        if wait:
            view, timed_out = follow(read, timeout)
            if timed_out:
                console().print(workflow_table(view))
                typer.secho(f"timeout: workflow {workflow_id} is still {view.state}; it goes on", err=True)
                return EXIT_TIMEOUT
        else:
            view = read()
        console().print(workflow_table(view))
        for step in view.steps:
            if step.id in view.failed_steps and step.error:
                console(stderr=True).print(
                    f"failed step {step.step or step.id}: {error_summary(step.error.model_dump())}",
                    style="red",
                    markup=False,
                    soft_wrap=True,
                )
    return outcome_code(view)


@workflows.command("cancel")
def cancel(
    workflow_id: str = typer.Argument(..., help="Workflow id."),
    app_spec: str | None = APP_OPTION,
    url: str | None = URL_OPTION,
    server: str | None = SERVER_OPTION,
    api_key: str | None = API_KEY_OPTION,
) -> None:
    """Cancel every unfinished step of a workflow (their dependents are canceled with them)."""
    with cli_errors():
        if server:
            from conveyor.client import ConveyorClient

            with ConveyorClient(server, api_key=api_key) as client:
                view = client.cancel_workflow(workflow_id)
        else:
            with opened(app_spec, url) as conveyor:
                found = conveyor.cancel_workflow(workflow_id)
            if found is None:
                raise UsageError(f"no workflow with id {workflow_id!r}")
            view = WorkflowView.from_status(found, internals=True)
        console().print(workflow_table(view))
        typer.secho(f"canceled the unfinished steps of workflow {workflow_id}", err=True)
