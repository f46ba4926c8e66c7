"""conveyor keys create | ls | revoke: API keys of the job service, stored hashed by the jobs' engine."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar

import typer
from rich.console import Console
from rich.table import Table

from conveyor.api.keys import SCOPES, new_key
from conveyor.backend.protocol import Backend, RevokeKeyRequest
from conveyor.cli.common import APP_OPTION, URL_OPTION, resolve_app
from conveyor.cli.main import app
from conveyor.serde import dumps
from conveyor.types import DEFAULT_TENANT

T = TypeVar("T")
keys = typer.Typer(help="API keys for `conveyor serve`: create, list, revoke.", no_args_is_help=True)
app.add_typer(keys, name="keys")


def _run(app_spec: str | None, url: str | None, action: Callable[[Backend], Awaitable[T]]) -> T:
    """Run ``action`` on the app's engine (its URL, settings and migrations), then close it."""
    conveyor = resolve_app(app_spec, url)

    async def go() -> T:
        try:
            return await action(await conveyor.backend())
        finally:
            await conveyor.aclose()

    return asyncio.run(go())


def _when(ts: float | None) -> str:
    return "" if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


@keys.command("create")
def create(
    scope: list[str] = typer.Option(
        ..., "--scope", "-s", help=f"Repeat for several: {', '.join(SCOPES)} (admin implies all)."
    ),
    tenant: str = typer.Option(DEFAULT_TENANT, "--tenant", "-t", help="Jobs of this key belong to this tenant."),
    name: str = typer.Option("", "--name", "-n", help="A label to recognise the key by."),
    app_spec: str | None = APP_OPTION,
    url: str | None = URL_OPTION,
) -> None:
    """Create a key and print it once: only its hash is stored."""
    request, token = new_key(name, tenant, scope)
    record = _run(app_spec, url, lambda backend: backend.create_key(request))
    typer.echo(token)
    typer.secho(
        f"key {record.key_id} for tenant {record.tenant!r} with scopes {', '.join(record.scopes)}: "
        "store it now, it cannot be shown again",
        err=True,
        fg="yellow",
    )


@keys.command("ls")
def ls(
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    app_spec: str | None = APP_OPTION,
    url: str | None = URL_OPTION,
) -> None:
    """List keys (ids, names, tenants, scopes; never the secrets)."""
    records = _run(app_spec, url, lambda backend: backend.list_keys())
    if as_json:
        rows = [
            {
                "key_id": r.key_id,
                "name": r.name,
                "tenant": r.tenant,
                "scopes": list(r.scopes),
                "created_at": r.created_at,
                "revoked_at": r.revoked_at,
            }
            for r in records
        ]
        typer.echo(dumps(rows))
        return
    table = Table("key id", "name", "tenant", "scopes", "created", "revoked")
    for r in records:
        table.add_row(r.key_id, r.name, r.tenant, ",".join(r.scopes), _when(r.created_at), _when(r.revoked_at))
    Console().print(table)


@keys.command("revoke")
def revoke(
    key_id: str = typer.Argument(..., help="The key id shown by `conveyor keys ls` (or the whole key)."),
    app_spec: str | None = APP_OPTION,
    url: str | None = URL_OPTION,
) -> None:
    """Revoke a key: every API process refuses it within a few seconds."""
    if key_id.startswith("cvk_"):
        key_id = key_id.split("_", 2)[1]
    if not _run(app_spec, url, lambda backend: backend.revoke_key(RevokeKeyRequest(key_id))):
        typer.secho(f"error: no active key {key_id!r}", fg="red", err=True)
        raise typer.Exit(1)
    typer.echo(f"revoked {key_id}")
