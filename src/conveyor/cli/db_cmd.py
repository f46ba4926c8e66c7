"""conveyor db migrate: bring the engine's schema up to date."""

from __future__ import annotations

import typer

from conveyor.cli.common import APP_OPTION, URL_OPTION
from conveyor.cli.main import app
from conveyor.cli.session import opened

db = typer.Typer(help="Manage the engine's schema.", no_args_is_help=True)
app.add_typer(db, name="db")


@db.command("migrate")
def migrate(app_spec: str | None = APP_OPTION, url: str | None = URL_OPTION) -> None:
    """Apply pending schema migrations (safe to run from several nodes at once)."""
    with opened(app_spec, url) as conveyor:
        applied = conveyor.migrate()
    typer.echo(f"applied {len(applied)} migration(s): {', '.join(applied)}" if applied else "schema is up to date")
