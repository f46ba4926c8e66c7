"""API keys in a table of the jobs' PostgreSQL database."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row

from conveyor import serde
from conveyor.api.keys import ApiKey
from conveyor.api.keys.sqlite import row_to_key
from conveyor.backend.sqlfile import load_queries
from conveyor.errors import BackendUnavailable

SQL = load_queries("conveyor.api.keys", "postgres.sql")


class PostgresKeyStore:
    """One lazily opened autocommit connection, reopened after an error."""

    def __init__(self, url: str) -> None:
        self.url = url.replace("postgres://", "postgresql://", 1).split("?", 1)[0]
        self._conn: psycopg.AsyncConnection[dict[str, Any]] | None = None

    async def _execute(self, query: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        try:
            if self._conn is None or self._conn.closed:
                self._conn = await psycopg.AsyncConnection.connect(self.url, autocommit=True, row_factory=dict_row)
                await self._conn.execute(SQL["create_table"])
            cur = await self._conn.execute(query, params)  # type: ignore[arg-type]
            rows = await cur.fetchall() if cur.description else []
            return [{**r, "_rowcount": cur.rowcount} for r in rows] or [{"_rowcount": cur.rowcount}]
        except psycopg.Error as exc:
            if self._conn is not None:
                await self._conn.close()
                self._conn = None
            raise BackendUnavailable(f"PostgreSQL error: {exc}") from exc

    async def create(self, key: ApiKey) -> None:
        await self._execute(
            SQL["insert"],
            {
                "key_id": key.key_id,
                "name": key.name,
                "tenant": key.tenant,
                "scopes": serde.dumps(list(key.scopes)),
                "secret_hash": key.secret_hash,
                "created_at": key.created_at,
            },
        )

    async def get(self, key_id: str) -> ApiKey | None:
        rows = [r for r in await self._execute(SQL["get"], {"key_id": key_id}) if "key_id" in r]
        return row_to_key(rows[0]) if rows else None

    async def list(self) -> list[ApiKey]:
        return [row_to_key(r) for r in await self._execute(SQL["list"]) if "key_id" in r]

    async def revoke(self, key_id: str, at: float) -> bool:
        rows = await self._execute(SQL["revoke"], {"key_id": key_id, "at": at})
        return bool(rows[0]["_rowcount"] == 1)

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None
