"""Options and helpers shared by the command groups."""

from __future__ import annotations

import os

import typer

from conveyor.app import Conveyor, load_app
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

SMTP_OPTION = typer.Option(
    None,
    "--smtp-url",
    envvar="CONVEYOR_SMTP_URL",
    help="SMTP server for email notifications: smtp://host:port or smtps://user:pass@host:465.",
)


def use_smtp(url: str | None) -> None:
    """Hand ``--smtp-url`` to the app (and its executor processes) through ``$CONVEYOR_SMTP_URL``,
    checked first so a bad URL is one ``error:`` line."""
    if url:
        from conveyor.email.smtp import SmtpServer

        SmtpServer.from_url(url)
        os.environ["CONVEYOR_SMTP_URL"] = url


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
    return Conveyor(url or os.environ.get("CONVEYOR_URL"))
