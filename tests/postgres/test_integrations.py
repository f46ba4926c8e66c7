"""The SQLAlchemy and Django recipes of docs/transactional-enqueue.md, run for real.

Skipped (by name) when SQLAlchemy or Django is not installed: neither is a Conveyor dependency.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest

from conveyor.app import Conveyor
from conveyor.backend.postgres.backend import PostgresBackend
from conveyor.backend.postgres.transactional import enqueue, enqueue_async
from conveyor.backend.protocol import ClaimRequest
from tests.engines import engine_url

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def url(tmp_path: Path) -> Iterator[str]:
    with engine_url("postgres", tmp_path, private=True) as u:
        yield u


@pytest.fixture
def app(url: str, tmp_path: Path) -> Conveyor:
    conveyor = Conveyor(url, result_store=str(tmp_path / "results"))

    @conveyor.task(name="shop.receipt", queue="mail")
    def receipt(order_id: int) -> int:
        return order_id

    return conveyor


@pytest.fixture
async def backend(url: str) -> AsyncIterator[PostgresBackend]:
    b = PostgresBackend(url)
    await b.open()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE orders (id int PRIMARY KEY)")
    yield b
    await b.close()


async def claimable(backend: PostgresBackend) -> list[str]:
    return [j.id for j in await backend.claim(ClaimRequest("w", ("mail",), limit=100))]


def sqlalchemy_url(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


async def test_sqlalchemy_session(backend: PostgresBackend, app: Conveyor, url: str) -> None:
    sa = pytest.importorskip("sqlalchemy")
    from sqlalchemy.orm import Session

    engine = sa.create_engine(sqlalchemy_url(url))
    try:
        with Session(engine) as session, session.begin():
            session.execute(sa.text("INSERT INTO orders VALUES (1)"))
            raw = session.connection().connection.driver_connection  # the psycopg Connection
            kept = enqueue(raw, app, "shop.receipt", {"order_id": 1})

        with Session(engine) as session:
            session.execute(sa.text("INSERT INTO orders VALUES (2)"))
            raw = session.connection().connection.driver_connection
            gone = enqueue(raw, app, "shop.receipt", {"order_id": 2})
            session.rollback()
    finally:
        engine.dispose()
    assert await backend.get(gone) is None
    assert await claimable(backend) == [kept]


async def test_sqlalchemy_async_session(backend: PostgresBackend, app: Conveyor, url: str) -> None:
    sa = pytest.importorskip("sqlalchemy")
    pytest.importorskip("greenlet")  # SQLAlchemy's asyncio support needs it (sqlalchemy[asyncio])
    from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

    engine = create_async_engine(sqlalchemy_url(url))
    try:
        async with AsyncSession(engine) as session, session.begin():
            await session.execute(sa.text("INSERT INTO orders VALUES (3)"))
            conn = await session.connection()
            raw = (await conn.get_raw_connection()).driver_connection  # the psycopg AsyncConnection
            assert isinstance(raw, psycopg.AsyncConnection)
            kept = await enqueue_async(raw, app, "shop.receipt", {"order_id": 3})

        async with AsyncSession(engine) as session:
            await session.execute(sa.text("INSERT INTO orders VALUES (4)"))
            conn = await session.connection()
            raw = (await conn.get_raw_connection()).driver_connection
            gone = await enqueue_async(raw, app, "shop.receipt", {"order_id": 4})
            await session.rollback()
    finally:
        await engine.dispose()
    assert await backend.get(gone) is None
    assert await claimable(backend) == [kept]


async def test_django_atomic(backend: PostgresBackend, url: str) -> None:
    pytest.importorskip("django")
    parts = urlsplit(url)
    proc = subprocess.run(
        [sys.executable, "-m", "tests.postgres.django_snippet", parts.path.lstrip("/"), str(parts.port or 5432)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    kept, gone = proc.stdout.split()
    assert await backend.get(gone) is None
    assert await claimable(backend) == [kept]
