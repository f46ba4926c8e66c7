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
    return apply_queues_config(Conveyor(url or os.environ.get("CONVEYOR_URL")))


RESULTS_OPTION = typer.Option(
    None,
    "--results",
    help="Result store for artifacts and uploads: a directory or s3://bucket/prefix?endpoint=...&region=... "
    "(default $CONVEYOR_RESULTS, else var/results). Every node of a deployment must name the same store.",
)


def load_with_results(app_spec: str, results: str | None) -> Conveyor:
    """Load the app with ``--results`` as its result store (set as $CONVEYOR_RESULTS first, so the
    executor processes and nodes started from here load the same store).

    An app that fixes its own ``result_store=`` in code would silently ignore the option: an error.
    """
    if results:
        os.environ["CONVEYOR_RESULTS"] = results
    conveyor = load_app(app_spec)
    if results and getattr(conveyor.result_store, "spec", None) != results:
        raise ConfigError(
            f"app {app_spec!r} sets its own result_store in code, so --results {results!r} would be ignored; "
            "drop one of them (or build the app with result_store=None to read $CONVEYOR_RESULTS)"
        )
    return conveyor


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
