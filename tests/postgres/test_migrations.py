"""`conveyor db migrate` from several nodes at once: one applies, the others wait and find nothing.

Real processes (one per "node"), started together against a fresh, empty database.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from conveyor.backend.postgres.backend import PostgresBackend
from conveyor.backend.postgres.migrate import PACKAGE
from conveyor.backend.sqlfile import migration_files
from tests.engines import engine_url

REPO = Path(__file__).resolve().parents[2]
NODES = 4


@pytest.fixture
def url(tmp_path: Path) -> Iterator[str]:
    with engine_url("postgres", tmp_path, private=True) as u:
        yield u


def applied_rows(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [r[0] for r in conn.execute("SELECT name FROM conveyor.schema_migrations ORDER BY name")]


def test_concurrent_cli_migrations_apply_each_migration_once(url: str) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    env.pop("CONVEYOR_APP", None)
    command = [sys.executable, "-m", "conveyor", "db", "migrate", "--url", url]
    procs = [
        subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for _ in range(NODES)
    ]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0] * NODES, outputs
    names = [name for name, _ in migration_files(PACKAGE)]
    assert sum("applied" in out for out in outputs) == 1, outputs
    assert sum("up to date" in out for out in outputs) == NODES - 1, outputs
    assert applied_rows(url) == names

    again = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and "up to date" in again.stdout


async def test_concurrent_open_in_one_process(url: str) -> None:
    """Many engines opening at once (a node's event loops, API workers) migrate exactly once."""
    backends = [PostgresBackend(url) for _ in range(6)]
    results = await asyncio.gather(*(b.migrate() for b in backends))
    names = [name for name, _ in migration_files(PACKAGE)]
    assert sorted(results, key=len) == [[]] * 5 + [names]
    await asyncio.gather(*(b.open() for b in backends))
    assert all(await asyncio.gather(*(b.now() for b in backends)))
    await asyncio.gather(*(b.close() for b in backends))
    assert applied_rows(url) == names


async def test_migrate_against_an_unreachable_server_is_one_clear_error() -> None:
    from conveyor.errors import BackendUnavailable

    backend = PostgresBackend("postgresql://postgres@127.0.0.1:1/nowhere?connect_timeout=2")
    with pytest.raises(BackendUnavailable) as info:
        await backend.migrate()
    assert "\n" not in str(info.value) and "PostgreSQL unavailable" in str(info.value)
