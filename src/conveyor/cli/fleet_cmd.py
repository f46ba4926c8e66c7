"""conveyor workers: every node of the fleet, from the engine's worker registry.

Nodes on any machine register in the engine they share, so this lists the whole fleet from
wherever the engine is reachable: alive or dead (missed its beats), what each consumes, and
how many jobs it holds.
"""

from __future__ import annotations

import typer
from rich.markup import escape
from rich.table import Table

from conveyor.cli.common import APP_OPTION, URL_OPTION
from conveyor.cli.errors import cli_errors
from conveyor.cli.main import app
from conveyor.cli.render import console, print_json, span
from conveyor.cli.session import opened
from conveyor.fleet import WorkerStatus


def workers_table(nodes: list[WorkerStatus]) -> Table:
    table = Table(header_style="bold")
    for name, justify in (
        ("worker", "left"),
        ("status", "left"),
        ("host", "left"),
        ("pid", "right"),
        ("queues", "left"),
        ("in flight", "right"),
        ("executors", "right"),
        ("last beat", "right"),
        ("version", "left"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for w in nodes:
        info = w.info
        status = f"[green]{info.get('state', 'running')}[/]" if w.alive else "[red]dead[/]"
        table.add_row(
            escape(w.worker_id),
            status,
            escape(str(info.get("host", ""))),
            str(info.get("pid", "")),
            escape(",".join(info.get("queues") or [])),
            str(info.get("in_flight", "")),
            str(info.get("executors", "")),
            f"{span(w.silent_for)} ago",
            escape(str(info.get("version", ""))),
        )
    return table


@app.command("workers")
def workers(
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    app_spec: str | None = APP_OPTION,
    url: str | None = URL_OPTION,
) -> None:
    """Worker nodes registered in the engine: alive or dead, queues, jobs in flight, last beat."""
    with cli_errors(), opened(app_spec, url) as conveyor:
        nodes = conveyor.workers()
    if as_json:
        print_json([w.to_dict() for w in nodes])
        return
    out = console()
    if not nodes:
        out.print("no worker nodes registered: start one with `conveyor worker --app ...`")
        return
    out.print(workers_table(nodes))
    dead = sum(1 for w in nodes if not w.alive)
    out.print(f"{len(nodes) - dead} alive, {dead} dead (dead nodes are forgotten after 10 minutes of silence)")
