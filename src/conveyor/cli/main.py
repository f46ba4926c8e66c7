"""Assemble the command groups and run them with clear errors."""

from __future__ import annotations

import importlib
import os
import sys

import typer

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
)
for _module in COMMAND_MODULES:
    try:
        importlib.import_module(_module)
    except ModuleNotFoundError as exc:  # a group not built yet
        if exc.name != _module:
            raise


def main() -> None:
    try:
        app()
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
