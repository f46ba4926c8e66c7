"""Real engines for tests: a fresh SQLite file, PostgreSQL store or Redis key prefix.

PostgreSQL: creating and migrating a database costs ~2 s, so a test gets an empty store in
its xdist worker's own schema of one shared test database (``?schema=t_gw0_<run>``, migrated
once per worker, emptied with TRUNCATE ... RESTART IDENTITY before each test). A test that
needs a database of its own (migration tests, tests that read plans or restart the server, a
store shared by a whole module) asks for ``private=True``.

Locally an engine whose server is down is a visible skip; with CI=true it is a failure,
so CI can never pass by skipping an engine.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ALL_ENGINES = ("sqlite", "postgres", "redis")
ENGINES = tuple(
    e.strip() for e in os.environ.get("CONVEYOR_TEST_ENGINES", ",".join(ALL_ENGINES)).split(",") if e.strip()
)
"""Engines every engine-parametrised suite runs on: all three unless $CONVEYOR_TEST_ENGINES
narrows it by hand (e.g. ``CONVEYOR_TEST_ENGINES=sqlite``); ``make test`` runs all three."""
PG_ADMIN_URL = os.environ.get("CONVEYOR_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("CONVEYOR_TEST_REDIS", "redis://127.0.0.1:6379/0")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def unavailable(reason: str) -> None:
    """Skip locally, fail in CI."""
    if IN_CI:
        pytest.fail(f"engine required in CI but unavailable: {reason}")
    pytest.skip(reason)


def engine_built(engine: str) -> bool:
    """True when the engine's code is in this tree; False only when its module is absent.

    A missing *driver* (psycopg, redis) is a broken install, never "not implemented": it
    raises, so neither CI nor a local run passes by silently skipping a whole engine.
    """
    if engine not in ALL_ENGINES:
        raise ValueError(f"unknown engine {engine!r} (known: {', '.join(ALL_ENGINES)})")
    module = f"conveyor.backend.{engine}.backend"
    try:
        __import__(module)
    except ModuleNotFoundError as exc:
        if exc.name is not None and module.startswith(exc.name):
            return False
        raise RuntimeError(f"the {engine} engine cannot be imported, a dependency is missing: {exc}") from exc
    return True


@contextmanager
def engine_url(engine: str, tmp_path: Path, *, private: bool = False) -> Iterator[str]:
    """Yield a URL to a fresh, empty store of ``engine``; drop it afterwards.

    ``private``: PostgreSQL only, a database of its own instead of the worker's schema (which is
    emptied by the next test of the worker, so it must not outlive the test).
    """
    if not engine_built(engine):
        # Not a server problem: the engine's code is not in this tree yet (a failure in CI).
        unavailable(f"{engine} engine not implemented in this tree")
    if engine == "sqlite":
        yield f"sqlite:///{tmp_path / 'conveyor.db'}"
    elif engine == "postgres":
        yield from (_postgres_database() if private else _postgres_schema())
    elif engine == "redis":
        yield from _redis_prefix()
    else:  # pragma: no cover
        raise ValueError(engine)


def _postgres_database() -> Iterator[str]:
    if not _reachable("127.0.0.1", 5432):
        unavailable("PostgreSQL is not running on 127.0.0.1:5432")
    import psycopg

    name = f"conveyor_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


SHARED_DATABASE = "conveyor_tests"
_migrated: set[str] = set()


def worker_schema() -> str:
    """This xdist worker's schema in SHARED_DATABASE, unique per test run (two runs never share)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID", "") or _RUN
    return f"t_{worker}_{run[:8]}".lower()


_RUN = uuid.uuid4().hex


def _shared_url(schema: str | None = None) -> str:
    base = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{SHARED_DATABASE}"
    return base + (f"?schema={schema}" if schema else "")


def _postgres_schema() -> Iterator[str]:
    if not _reachable("127.0.0.1", 5432):
        unavailable("PostgreSQL is not running on 127.0.0.1:5432")
    import psycopg

    schema = worker_schema()
    if schema not in _migrated:
        # another worker (or an earlier run) may have created it
        duplicate = (psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation)
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn, contextlib.suppress(*duplicate):
            conn.execute(f'CREATE DATABASE "{SHARED_DATABASE}"')
        _migrate(_shared_url(schema))
        _migrated.add(schema)
        atexit.register(_drop_schema, schema)
    with psycopg.connect(_shared_url(), autocommit=True) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = %s AND tablename <> 'schema_migrations'",
                (schema,),
            )
        ]
        if tables:
            conn.execute(f"TRUNCATE {', '.join(f'{schema}.{t}' for t in tables)} RESTART IDENTITY CASCADE")
    yield _shared_url(schema)


def _migrate(url: str) -> None:
    """Create and migrate the schema once, through the engine itself (as a node would).

    On a thread of its own: the caller may be an async fixture, inside a running event loop.
    """
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from conveyor.backend.postgres.backend import PostgresBackend

    async def run() -> None:
        backend = PostgresBackend(url)
        await backend.open()
        await backend.close()

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, run()).result()


def _drop_schema(schema: str) -> None:
    import psycopg

    with contextlib.suppress(psycopg.Error), psycopg.connect(_shared_url(), autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def _redis_prefix() -> Iterator[str]:
    if not _reachable("127.0.0.1", 6379):
        unavailable("Redis is not running on 127.0.0.1:6379")
    import redis

    prefix = f"conveyor-t-{uuid.uuid4().hex[:12]}"
    try:
        yield f"{REDIS_URL}?prefix={prefix}"
    finally:
        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        for i in range(0, len(keys), 500):
            client.delete(*keys[i : i + 500])
        client.close()
