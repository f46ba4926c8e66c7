"""Versioned migrations, safe when several nodes start at once.

Migrations are ``migrations/NNNN_name.sql`` applied in name order, each in its own
transaction together with its row in ``{schema}.schema_migrations`` (``conveyor`` unless the
URL says ``?schema=NAME``). A session-level advisory
lock serialises runners: the first node applies, the others wait, then find nothing to do.
A node that dies mid-migration releases the lock with its connection, and its transaction
rolls back, so the next runner starts from a clean state.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import AsyncConnection

from conveyor.backend.sqlfile import DEFAULT_SCHEMA, load_queries, migration_files

PACKAGE = "conveyor.backend.postgres"
# Any fixed 64-bit number works; this one spells "conveyor" in ASCII.
MIGRATION_LOCK_KEY = 0x636F6E7665796F72


async def _applied(conn: AsyncConnection[Any], sql: dict[str, str]) -> set[str] | None:
    """Names already applied, or None when the bookkeeping table does not exist yet."""
    try:
        async with conn.transaction():
            cur = await conn.execute(sql["applied_migrations"])
            return {row["name"] for row in await cur.fetchall()}  # type: ignore[call-overload]
    except psycopg.errors.UndefinedTable:
        return None
    except psycopg.errors.InvalidSchemaName:
        return None


async def apply_migrations(conn: AsyncConnection[Any], schema: str = DEFAULT_SCHEMA) -> list[str]:
    """Apply pending migrations to ``schema`` on an autocommit connection; return the names applied."""
    SQL = load_queries(PACKAGE, schema=schema)
    files = migration_files(PACKAGE, schema)
    done = await _applied(conn, SQL)
    if done is not None and all(name in done for name, _ in files):
        return []  # fast path: no lock, no DDL when the schema is current
    await conn.execute(SQL["lock_migrations"], {"key": MIGRATION_LOCK_KEY})
    try:
        await conn.execute(SQL["create_migrations_table"])
        done = await _applied(conn, SQL) or set()
        applied: list[str] = []
        for name, sql in files:
            if name in done:
                continue
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute(SQL["record_migration"], {"name": name})
            applied.append(name)
        return applied
    finally:
        if not conn.closed:
            await conn.execute(SQL["unlock_migrations"], {"key": MIGRATION_LOCK_KEY})
