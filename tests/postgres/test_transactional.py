"""Transactional enqueue: a job enqueued in the application's transaction exists iff it commits.

Runs on the machine's PostgreSQL, in a fresh database per test, with the application's own
psycopg connections (sync and async), exactly as docs/transactional-enqueue.md shows.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest

from conveyor.app import Conveyor
from conveyor.backend.postgres.backend import PostgresBackend
from conveyor.backend.postgres.transactional import enqueue, enqueue_async, enqueue_result
from conveyor.backend.protocol import ClaimRequest, EnqueueResult
from conveyor.errors import IdempotencyConflict, InvalidArguments, QueueFull
from conveyor.task import CallOptions
from conveyor.types import JobState, QueueConfig
from tests.engines import engine_url


@pytest.fixture
def url(tmp_path: Path) -> Iterator[str]:
    with engine_url("postgres", tmp_path, private=True) as u:
        yield u


@pytest.fixture
def app(url: str, tmp_path: Path) -> Conveyor:
    conveyor = Conveyor(url, queues=[QueueConfig("tiny", max_depth=1)], result_store=str(tmp_path / "results"))

    @conveyor.task(name="shop.receipt", queue="mail")
    def receipt(order_id: int) -> int:
        return order_id

    return conveyor


@pytest.fixture
async def backend(url: str) -> AsyncIterator[PostgresBackend]:
    b = PostgresBackend(url)
    await b.open()  # runs the migrations: the application's database now has the conveyor schema
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE orders (id int PRIMARY KEY)")
    yield b
    await b.close()


async def claim_all(backend: PostgresBackend, queue: str = "mail") -> list[str]:
    jobs = await backend.claim(ClaimRequest("w", (queue,), limit=100, lease_seconds=30))
    return [j.id for j in jobs]


def orders(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM orders").fetchone()
        assert row is not None
        return int(row[0])


async def test_sync_rollback_leaves_no_job_and_commit_makes_it_claimable(
    backend: PostgresBackend, app: Conveyor, url: str
) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        with pytest.raises(RuntimeError), conn.transaction():
            conn.execute("INSERT INTO orders VALUES (1)")
            rolled_back = enqueue(conn, app, "shop.receipt", {"order_id": 1})
            raise RuntimeError("payment declined")
        assert await backend.get(rolled_back) is None
        assert await claim_all(backend) == []

        with conn.transaction():
            conn.execute("INSERT INTO orders VALUES (2)")
            committed = enqueue(conn, app, "shop.receipt", {"order_id": 2})
            # not visible to anyone else before COMMIT
            assert await backend.get(committed) is None
    job = await backend.get(committed)
    assert job is not None and job.state is JobState.QUEUED and job.args == {"order_id": 2}
    assert await claim_all(backend) == [committed]
    assert orders(url) == 1


async def test_sync_implicit_transaction_follows_commit_and_rollback(
    backend: PostgresBackend, app: Conveyor, url: str
) -> None:
    """A non-autocommit connection (what SQLAlchemy and Django in atomic() hand out)."""
    with psycopg.connect(url) as conn:
        first = enqueue(conn, app, "shop.receipt", {"order_id": 1})  # first statement of the transaction
        conn.rollback()
        assert await backend.get(first) is None

        conn.execute("INSERT INTO orders VALUES (3)")
        second = enqueue(conn, app, "shop.receipt", {"order_id": 3})
        conn.commit()
    assert await claim_all(backend) == [second]
    assert orders(url) == 1


async def test_async_rollback_and_commit(backend: PostgresBackend, app: Conveyor, url: str) -> None:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        async with conn.transaction(force_rollback=True):
            await conn.execute("INSERT INTO orders VALUES (4)")
            gone = await enqueue_async(conn, app, "shop.receipt", {"order_id": 4})
        assert await backend.get(gone) is None

        first = await enqueue_async(conn, app, "shop.receipt", {"order_id": 5})  # implicit transaction
        await conn.rollback()
        assert await backend.get(first) is None

        async with conn.transaction():
            await conn.execute("INSERT INTO orders VALUES (6)")
            kept = await enqueue_async(conn, app, "shop.receipt", {"order_id": 6})
    assert await claim_all(backend) == [kept]
    assert orders(url) == 1


async def test_autocommit_without_transaction_commits_at_once(
    backend: PostgresBackend, app: Conveyor, url: str
) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        job_id = enqueue(conn, app, "shop.receipt", {"order_id": 7})
    assert await claim_all(backend) == [job_id]


async def test_invalid_arguments_write_nothing(backend: PostgresBackend, app: Conveyor, url: str) -> None:
    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO orders VALUES (8)")
        with pytest.raises(InvalidArguments):
            enqueue(conn, app, "shop.receipt", {"order_id": "not a number"})
        conn.commit()  # the caller's transaction is intact
    assert orders(url) == 1
    assert await claim_all(backend) == []


async def test_refusal_keeps_the_callers_transaction_usable(backend: PostgresBackend, app: Conveyor, url: str) -> None:
    """QueueFull (and other refusals) roll back to a savepoint: the caller can still commit its work."""
    tiny = CallOptions(queue="tiny", idempotency_key="second")
    with psycopg.connect(url, autocommit=True) as conn:
        enqueue(conn, app, "shop.receipt", {"order_id": 1}, CallOptions(queue="tiny"))
        with conn.transaction():
            conn.execute("INSERT INTO orders VALUES (9)")
            with pytest.raises(QueueFull):
                enqueue(conn, app, "shop.receipt", {"order_id": 2}, tiny)
            conn.execute("INSERT INTO orders VALUES (10)")
    assert orders(url) == 2
    assert len(await claim_all(backend, "tiny")) == 1
    # the refused job's idempotency key was rolled back with it, though the transaction committed
    with psycopg.connect(url, autocommit=True) as conn:
        again = enqueue_result(conn, app, "shop.receipt", {"order_id": 99}, CallOptions(idempotency_key="second"))
    assert again.created


async def test_idempotent_duplicate_waits_for_the_first_transaction(
    backend: PostgresBackend, app: Conveyor, url: str
) -> None:
    """Two transactions with one key: the second blocks until the first commits, then gets its job."""
    key = CallOptions(idempotency_key="order-11")
    second: dict[str, object] = {}

    def duplicate() -> None:
        with psycopg.connect(url, autocommit=True) as other, other.transaction():
            try:
                second["result"] = enqueue_result(other, app, "shop.receipt", {"order_id": 11}, key)
            except Exception as exc:  # reported to the main thread
                second["error"] = exc

    with psycopg.connect(url, autocommit=True) as conn:
        with conn.transaction():
            first = enqueue(conn, app, "shop.receipt", {"order_id": 11}, key)
            thread = threading.Thread(target=duplicate)
            thread.start()
            thread.join(timeout=0.5)
            assert thread.is_alive(), "the duplicate must wait for the first transaction"
        thread.join(timeout=30)
    assert "error" not in second, second.get("error")
    result = second["result"]
    assert isinstance(result, EnqueueResult)
    assert result.created is False and result.job.id == first
    assert await claim_all(backend) == [first]

    with psycopg.connect(url, autocommit=True) as conn, pytest.raises(IdempotencyConflict):
        enqueue(conn, app, "shop.receipt", {"order_id": 12}, key)


async def test_duplicate_after_rollback_creates_the_job(backend: PostgresBackend, app: Conveyor, url: str) -> None:
    key = CallOptions(idempotency_key="order-13")
    with psycopg.connect(url, autocommit=True) as conn:
        with pytest.raises(RuntimeError), conn.transaction():
            enqueue(conn, app, "shop.receipt", {"order_id": 13}, key)
            raise RuntimeError("rolled back")
        result = enqueue_result(conn, app, "shop.receipt", {"order_id": 13}, key)
    assert result.created
    assert await claim_all(backend) == [result.job.id]
