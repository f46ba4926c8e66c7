"""Real engines for tests: a fresh SQLite file, PostgreSQL database or Redis key prefix.

Locally an engine whose server is down is a visible skip; with CI=true it is a failure,
so CI can never pass by skipping an engine.
"""

from __future__ import annotations

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
def engine_url(engine: str, tmp_path: Path) -> Iterator[str]:
    """Yield a URL to a fresh, empty store of ``engine``; drop it afterwards."""
    if not engine_built(engine):
        # Not a server problem: the engine's code is not in this tree yet (a failure in CI).
        unavailable(f"{engine} engine not implemented in this tree")
    if engine == "sqlite":
        yield f"sqlite:///{tmp_path / 'conveyor.db'}"
    elif engine == "postgres":
        yield from _postgres_database()
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
