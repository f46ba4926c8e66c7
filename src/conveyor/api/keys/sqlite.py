"""API keys in a table of the jobs' SQLite file."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from typing import Any, TypeVar

from conveyor import serde
from conveyor.api.keys import ApiKey
from conveyor.backend.sqlfile import load_queries
from conveyor.backend.sqlite.backend import parse_sqlite_url
from conveyor.errors import BackendUnavailable

T = TypeVar("T")
SQL = load_queries("conveyor.api.keys", "sqlite.sql")


def row_to_key(row: Any) -> ApiKey:
    return ApiKey(
        key_id=row["key_id"],
        name=row["name"],
        tenant=row["tenant"],
        scopes=tuple(serde.loads(row["scopes"])),
        secret_hash=row["secret_hash"],
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
    )


class SQLiteKeyStore:
    """A short-lived connection per call: key look-ups are rare (the verifier caches them)."""

    def __init__(self, url: str) -> None:
        self.path, _ = parse_sqlite_url(url)
        self._ready = False

    def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=30)
        except sqlite3.Error as exc:
            raise BackendUnavailable(f"SQLite error: {exc}") from exc
        try:
            conn.row_factory = sqlite3.Row
            if not self._ready:
                conn.execute(SQL["create_table"])
                self._ready = True
            return fn(conn)
        except sqlite3.Error as exc:
            raise BackendUnavailable(f"SQLite error: {exc}") from exc
        finally:
            conn.close()

    async def create(self, key: ApiKey) -> None:
        params = {
            "key_id": key.key_id,
            "name": key.name,
            "tenant": key.tenant,
            "scopes": serde.dumps(list(key.scopes)),
            "secret_hash": key.secret_hash,
            "created_at": key.created_at,
        }
        await asyncio.to_thread(self._call, lambda c: c.execute(SQL["insert"], params))

    async def get(self, key_id: str) -> ApiKey | None:
        def run(conn: sqlite3.Connection) -> ApiKey | None:
            row = conn.execute(SQL["get"], {"key_id": key_id}).fetchone()
            return None if row is None else row_to_key(row)

        return await asyncio.to_thread(self._call, run)

    async def list(self) -> list[ApiKey]:
        return await asyncio.to_thread(self._call, lambda c: [row_to_key(r) for r in c.execute(SQL["list"])])

    async def revoke(self, key_id: str, at: float) -> bool:
        def run(conn: sqlite3.Connection) -> bool:
            return conn.execute(SQL["revoke"], {"key_id": key_id, "at": at}).rowcount == 1

        return await asyncio.to_thread(self._call, run)

    async def close(self) -> None:
        return None
