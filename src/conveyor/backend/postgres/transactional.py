"""Transactional enqueue: the job exists if and only if the application's transaction commits.

Call these with the application's own psycopg connection, inside its transaction::

    with conn.transaction():
        conn.execute("INSERT INTO orders ...")
        job_id = enqueue(conn, app, "shop.send_receipt", {"order_id": 7})
    # committed: the order and its job both exist; rolled back: neither does

The job row, its history event, its idempotency key and the wake-up NOTIFY are written on
that connection; PostgreSQL delivers the NOTIFY only at COMMIT, so workers never see a job
whose transaction might still roll back. Arguments are validated by ``app.build_request``
before anything is written. The app's schema (``conveyor``, or ``?schema=NAME`` in the app's
PostgreSQL URL) must exist in that database (``conveyor db migrate``).
See docs/transactional-enqueue.md for SQLAlchemy and Django.

Errors: Conveyor's own refusals (UnknownTask, InvalidArguments, QueueFull, IdempotencyConflict,
DependencyError) are raised as usual; when the caller's transaction is open they are raised
after rolling back to a savepoint, so the caller's transaction stays usable and holds none of
the refused job's writes. Database errors
are the caller's psycopg errors, unchanged: it is the caller's connection and transaction.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from psycopg import AsyncConnection, Connection
from psycopg.pq import TransactionStatus

from conveyor.backend.postgres.connection import parse_postgres_url
from conveyor.backend.postgres.enqueue import enqueue_steps, run_steps_async, run_steps_sync
from conveyor.backend.protocol import EnqueueRequest, EnqueueResult
from conveyor.backend.sqlfile import DEFAULT_SCHEMA, load_queries
from conveyor.task import CallOptions

if TYPE_CHECKING:
    from conveyor.app import Conveyor


def _queries(app: Conveyor) -> dict[str, str]:
    """The named queries in the app's schema (the default one when its URL is not PostgreSQL)."""
    schema = parse_postgres_url(app.url).schema if app.url.startswith("postgres") else DEFAULT_SCHEMA
    return load_queries("conveyor.backend.postgres", schema=schema)


def _request(app: Conveyor, task: str, args: dict[str, Any], options: CallOptions | None) -> EnqueueRequest:
    return app.build_request(task, args, options)


def enqueue(
    conn: Connection[Any], app: Conveyor, task: str, args: dict[str, Any], options: CallOptions | None = None
) -> str:
    """Enqueue on ``conn`` (a sync psycopg connection) in its current transaction; return the job id.

    In autocommit mode outside any ``conn.transaction()`` block the job is committed at once,
    as any other statement on that connection would be.
    """
    return enqueue_result(conn, app, task, args, options).job.id


def enqueue_result(
    conn: Connection[Any], app: Conveyor, task: str, args: dict[str, Any], options: CallOptions | None = None
) -> EnqueueResult:
    """Like ``enqueue`` but returns the whole result (the stored Job and whether it was created)."""
    req = _request(app, task, args, options)
    sql = _queries(app)
    if conn.info.transaction_status == TransactionStatus.IDLE and not conn.autocommit:
        # The caller's implicit transaction has not started yet: open it, so the block below
        # is a savepoint inside it rather than a transaction of its own that would commit.
        conn.execute(sql["open_transaction"])
    # Inside a transaction: a savepoint, so a refusal (QueueFull...) undoes our partial writes
    # and leaves the caller's transaction usable. In autocommit mode outside a transaction
    # block: a transaction of our own, so the job's statements are atomic.
    with conn.transaction():
        return run_steps_sync(conn, enqueue_steps(req, 0.0), sql)


async def enqueue_async(
    conn: AsyncConnection[Any], app: Conveyor, task: str, args: dict[str, Any], options: CallOptions | None = None
) -> str:
    """Enqueue on ``conn`` (an async psycopg connection) in its current transaction; return the job id."""
    return (await enqueue_result_async(conn, app, task, args, options)).job.id


async def enqueue_result_async(
    conn: AsyncConnection[Any], app: Conveyor, task: str, args: dict[str, Any], options: CallOptions | None = None
) -> EnqueueResult:
    """Like ``enqueue_async`` but returns the whole result."""
    req = _request(app, task, args, options)
    sql = _queries(app)
    if conn.info.transaction_status == TransactionStatus.IDLE and not conn.autocommit:
        await conn.execute(sql["open_transaction"])
    async with conn.transaction():
        return await run_steps_async(conn, enqueue_steps(req, 0.0), sql)
