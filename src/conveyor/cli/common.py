"""Options and helpers shared by the command groups."""

from __future__ import annotations

import os

import typer

from conveyor.app import Conveyor, apply_queues_config, load_app
from conveyor.errors import ConfigError

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
    """The app named by --app, or a bare app on --url for commands that run no task code.

    With both, the app's own URL is the one used: a different --url (or $CONVEYOR_URL, its
    environment variable) would be silently ignored, so it is an error instead.
    """
    if app_spec:
        conveyor = load_app(app_spec)
        if url and url != conveyor.url:
            raise ConfigError(
                f"--url/CONVEYOR_URL is {url!r} but app {app_spec!r} uses {conveyor.url!r}; "
                "the app's URL would win, so give only one of them (or make them agree)"
            )
        return conveyor
    return apply_queues_config(Conveyor(url or os.environ.get("CONVEYOR_URL")))


QUEUES_CONFIG_OPTION = typer.Option(
    None,
    "--queues-config",
    envvar="CONVEYOR_QUEUES_CONFIG",
    help="TOML file declaring queues ([queues.NAME] or [tool.conveyor.queues.NAME]): max_depth, "
    "max_runtime, overflow_to, priority, paused.",
)


def use_queues_config(path: str | None) -> None:
    """Make ``--queues-config`` the file every process of this command reads (checked now)."""
    if path:
        from conveyor.queues import QUEUES_CONFIG_ENV, load_queues_config

        load_queues_config(path)  # a bad file is an error before anything starts
        os.environ[QUEUES_CONFIG_ENV] = os.path.abspath(path)
