"""API keys live in the jobs' engine: its URL options reach the connection that serves keys, and
keys written by the old per-engine key stores keep working after the engine migrates."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import uuid
from pathlib import Path

import httpx
import psycopg
import pytest
import redis

from conveyor.backend import create_backend
from tests.api.procs import Env
from tests.engines import engine_url


def test_a_postgres_url_option_reaches_the_connection_that_serves_keys(tmp_path: Path) -> None:
    app_name = f"conveyor-keys-{uuid.uuid4().hex[:8]}"
    with engine_url("postgres", tmp_path, private=True) as base:
        database = base.rsplit("/", 1)[1]
        # one pooled connection: whatever serves a key look-up is that connection
        url = f"{base}?application_name={app_name}&pool_size=1&pool_min=1"
        env = Env(url, tmp_path)
        try:
            key = env.create_key("read", tenant="a", cli=True)
            server = env.serve()
            with server.http(key) as http:
                assert http.get("/v1/jobs").status_code == 200
            unknown = f"cvk_{key.split('_')[1]}_not-the-secret"
            assert httpx.get(f"{server.url}/v1/jobs", headers={"Authorization": f"Bearer {unknown}"}).status_code == 401
            with psycopg.connect(base, autocommit=True) as admin:
                rows = admin.execute(
                    "SELECT application_name, query FROM pg_stat_activity"
                    " WHERE datname = %s AND pid <> pg_backend_pid()",
                    (database,),
                ).fetchall()
        finally:
            env.stop_all()
    served = [query for name, query in rows if "api_keys" in query]
    assert served, f"no connection of the server ran a key look-up: {rows}"
    assert all(name == app_name for name, query in rows if "api_keys" in query), rows


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


async def _found(url: str, secret: str) -> tuple[str, bool] | None:
    backend = create_backend(url)
    await backend.open()
    try:
        record = await backend.find_key(_hash(secret))
        return None if record is None else (record.tenant, record.active)
    finally:
        await backend.close()


async def test_keys_of_the_old_sqlite_store_keep_working(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:  # the table the old key store created on first use
        conn.execute(
            "CREATE TABLE api_keys (key_id TEXT PRIMARY KEY, name TEXT NOT NULL, tenant TEXT NOT NULL,"
            " scopes TEXT NOT NULL, secret_hash TEXT NOT NULL, created_at REAL NOT NULL, revoked_at REAL)"
        )
        conn.execute("INSERT INTO api_keys VALUES ('k1', 'n', 'acme', '[\"read\"]', ?, 1.5, NULL)", (_hash("s1"),))
    assert await _found(f"sqlite:///{path}", "s1") == ("acme", True)


async def test_keys_of_the_old_postgres_store_are_carried_over(tmp_path: Path) -> None:
    with engine_url("postgres", tmp_path, private=True) as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                "CREATE TABLE conveyor_api_keys (key_id TEXT PRIMARY KEY, name TEXT NOT NULL, tenant TEXT NOT NULL,"
                " scopes TEXT NOT NULL, secret_hash TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL,"
                " revoked_at DOUBLE PRECISION)"
            )
            conn.execute(
                "INSERT INTO conveyor_api_keys VALUES ('k1', 'n', 'acme', '[\"read\"]', %s, 1.5, NULL),"
                " ('k2', 'n', 'acme', '[\"read\"]', %s, 1.5, 2.5)",
                (_hash("s1"), _hash("s2")),
            )
        assert await _found(url, "s1") == ("acme", True)
        assert await _found(url, "s2") == ("acme", False)


async def test_keys_of_the_old_redis_store_are_carried_over(tmp_path: Path) -> None:
    with engine_url("redis", tmp_path) as url:
        prefix = url.rsplit("prefix=", 1)[1]
        client = redis.Redis.from_url(url.split("?", 1)[0])
        old = {"key_id": "k1", "name": "n", "tenant": "acme", "scopes": ["read"], "secret_hash": _hash("s1")}
        client.hset(f"{prefix}:api_keys", "k1", json.dumps({**old, "created_at": 1.5, "revoked_at": None}))
        client.hset(
            f"{prefix}:api_keys",
            "k2",
            json.dumps({**old, "key_id": "k2", "secret_hash": _hash("s2"), "created_at": 1.5, "revoked_at": 2.5}),
        )
        try:
            assert await _found(url, "s1") == ("acme", True)
            assert await _found(url, "s2") == ("acme", False)
            assert not client.exists(f"{prefix}:api_keys"), "the old hash is emptied once carried over"
        finally:
            client.close()


@pytest.fixture(autouse=True)
def _no_stray_engine_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONVEYOR_URL", raising=False)
