"""Assemble the command groups and run them with clear errors."""

from __future__ import annotations

import importlib
import os
import sys

import typer
from typer.exceptions import TyperException

from conveyor.errors import ConveyorError

app = typer.Typer(
    name="conveyor",
    help="Conveyor: durable background jobs. Run workers, submit and inspect jobs, serve the HTTP API.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# Each module registers its commands on `app` (or adds a sub-Typer) when imported.
COMMAND_MODULES = (
    "conveyor.cli.db_cmd",
    "conveyor.cli.jobs_cmd",
    "conveyor.cli.worker_cmd",
    "conveyor.cli.serve_cmd",
    "conveyor.cli.keys_cmd",
    "conveyor.cli.fleet_cmd",
    "conveyor.cli.workflows_cmd",
    "conveyor.cli.limits_cmd",
    "conveyor.cli.schedules_cmd",
)
ALONE = {"worker": "conveyor.cli.worker_cmd"}
"""Commands loaded without the others: a worker node never imports the submit, API-schema or
serve modules, so each node (and every executor it spawns) stays small in memory."""


@app.callback()
def _group() -> None:
    """Keeps ``conveyor COMMAND`` a group even when only one command module is loaded."""


def _modules(argv: list[str]) -> tuple[str, ...]:
    command = argv[1] if len(argv) > 1 else ""
    return (ALONE[command],) if command in ALONE else COMMAND_MODULES


for _module in _modules(sys.argv):
    try:
        importlib.import_module(_module)
    except ModuleNotFoundError as exc:  # a group not built yet
        if exc.name != _module:
            raise


def main() -> None:
    try:
        code = app(standalone_mode=False)
    except typer.Abort:
        sys.exit(130)
    except TyperException as exc:
        # a usage error (bad option value, missing argument, unknown command): one line, with
        # the command path so the user knows which --help to read
        ctx = getattr(exc, "ctx", None)
        where = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        typer.secho(f"error: {message}{where}", fg="red", err=True)
        sys.exit(int(getattr(exc, "exit_code", 2)))
    except ConveyorError as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # last resort: one line, never a traceback
        if os.environ.get("CONVEYOR_DEBUG"):
            raise
        typer.secho(f"error: {type(exc).__name__}: {exc}", fg="red", err=True)
        sys.exit(2)
    sys.exit(code if isinstance(code, int) else 0)
