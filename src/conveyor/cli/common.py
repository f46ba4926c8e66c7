"""Options and helpers shared by the command groups."""

from __future__ import annotations

import os

import typer

from conveyor.app import Conveyor, load_app

APP_OPTION = typer.Option(
    None,
    "--app",
    "-A",
    envvar="CONVEYOR_APP",
    help="The application, as package.module:app (or set CONVEYOR_APP).",
)
URL_OPTION = typer.Option(
    None,
    "--url",
    envvar="CONVEYOR_URL",
    help="Engine URL when no --app is given, e.g. sqlite:///var/conveyor.db.",
)


def resolve_app(app_spec: str | None, url: str | None = None) -> Conveyor:
    """The app named by --app, or a bare app on --url for commands that run no task code."""
    if app_spec:
        return load_app(app_spec)
    return Conveyor(url or os.environ.get("CONVEYOR_URL"))
