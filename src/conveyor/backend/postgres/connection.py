"""Connection settings and the transaction runner: pool, retries, and error translation.

Every protocol operation is one call to ``Transactions.run(fn)``: ``fn`` gets a pooled
connection, inside a transaction unless it runs a single statement (which is atomic on its
own). What makes the engine survive a database restart without anyone restarting workers or
the API:

* Only connection-class errors (a lost or refused connection, an exhausted pool, the server
  shutting down or out of resources: psycopg's OperationalError family) become
  ``BackendUnavailable`` (the API turns it into 503 + Retry-After). A value the database refuses
  is ``InvalidArguments``; any other error is a bug and propagates as itself.
* A pooled connection that died while idle (the server restarted) is detected before anything
  is sent on it (its socket turned readable: see ``_alive``), dropped together with its idle
  siblings, and the operation runs on a fresh connection. That makes the first call after the
  server is back succeed instead of failing on a stale connection.
* A failure after the statements were sent is retried only for reads. A write may have
  committed just before the connection broke, so it is never redone blindly: the caller learns
  BackendUnavailable and retries (an enqueue with its idempotency key).
* Round trips: a one-statement operation runs in autocommit (it is its own transaction, one
  round trip); a multi-statement one runs in an explicit transaction.
* Deadlocks and serialization failures are rolled back by the server and simply retried.
* The pool gives up reconnecting quickly (``reconnect_timeout``) and grows again on the next
  request, so there is no exponential back-off to wait out after the server returns.
"""

from __future__ import annotations

import contextlib
import logging
import select
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from conveyor.backend.sqlfile import DEFAULT_SCHEMA, check_schema
from conveyor.errors import BackendUnavailable, ConfigError, DuplicateJobId, InvalidArguments

T = TypeVar("T")
log = logging.getLogger("conveyor.postgres")

# Query options Conveyor reads itself; everything else in the URL goes to libpq untouched.
OWN_OPTIONS = ("pool_size", "pool_min", "pool_timeout", "prepare_threshold", "migrate", "schema")
DEFAULT_CONNECT_TIMEOUT = "5"
DOWN_CHECKOUT_TIMEOUT = 1.0


@dataclass(frozen=True)
class Settings:
    """What the engine URL says: libpq conninfo plus Conveyor's own options."""

    conninfo: str
    pool_size: int = 4
    pool_min: int = 1
    pool_timeout: float = 10.0
    prepare_threshold: int | None = 5
    migrate_on_open: bool = True
    connect_kwargs: dict[str, Any] = field(default_factory=dict)
    schema: str = DEFAULT_SCHEMA


def parse_postgres_url(url: str) -> Settings:
    """``postgresql://user:pw@host:5432/db?pool_size=8&sslmode=require`` -> Settings."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres"):
        raise ConfigError(f"not a PostgreSQL URL: {url!r}")
    query = parse_qsl(parts.query, keep_blank_values=True)
    own = {k: v for k, v in query if k in OWN_OPTIONS}
    rest = [(k, v) for k, v in query if k not in OWN_OPTIONS]
    if not any(k == "connect_timeout" for k, _ in rest):
        rest.append(("connect_timeout", DEFAULT_CONNECT_TIMEOUT))
    # libpq decodes %XX but not "+": encode spaces (e.g. in options=-c ...) as %20
    conninfo = urlunsplit(("postgresql", parts.netloc, parts.path, urlencode(rest, quote_via=quote), parts.fragment))
    try:
        pool_size = int(own.get("pool_size", "4"))
        pool_min = int(own.get("pool_min", "1"))
        pool_timeout = float(own.get("pool_timeout", "10"))
        raw_prepare = own.get("prepare_threshold", "5").lower()
        prepare = None if raw_prepare in ("none", "off", "") else int(raw_prepare)
    except ValueError as exc:
        raise ConfigError(f"bad option in PostgreSQL URL {url!r}: {exc}") from None
    if pool_size < 1:
        raise ConfigError(f"pool_size must be at least 1 (got {pool_size})")
    if not 0 <= pool_min <= pool_size:
        raise ConfigError(f"pool_min must be between 0 and pool_size (got {pool_min})")
    if pool_timeout <= 0:
        raise ConfigError(f"pool_timeout must be positive seconds (got {pool_timeout})")
    migrate = own.get("migrate", "true").lower() not in ("0", "false", "no", "off")
    schema = check_schema(own.get("schema", DEFAULT_SCHEMA))
    return Settings(
        schema=schema,
        conninfo=conninfo,
        pool_size=pool_size,
        pool_min=pool_min,
        pool_timeout=pool_timeout,
        prepare_threshold=prepare,
        migrate_on_open=migrate,
        connect_kwargs={"prepare_threshold": prepare},
    )


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def unavailable(exc: BaseException, doing: str) -> BackendUnavailable:
    """One clear message for a connection-class failure; the psycopg error stays chained for logs."""
    return BackendUnavailable(f"PostgreSQL unavailable while {doing}: {_first_line(exc)}")


async def connect(settings: Settings, *, autocommit: bool) -> AsyncConnection[Any]:
    """A dedicated connection outside the pool (LISTEN, migrations)."""
    return await AsyncConnection.connect(
        settings.conninfo, autocommit=autocommit, row_factory=dict_row, **settings.connect_kwargs
    )


class Transactions:
    """The pool and the rule for running one protocol operation as one transaction."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._pool: AsyncConnectionPool[AsyncConnection[Any]] | None = None
        self._down_since: float | None = None

    async def open(self) -> AsyncConnectionPool[AsyncConnection[Any]]:
        if self._pool is None:
            pool: AsyncConnectionPool[AsyncConnection[Any]] = AsyncConnectionPool(
                self.settings.conninfo,
                min_size=self.settings.pool_min,
                max_size=self.settings.pool_size,
                # autocommit: a one-statement operation is its own transaction (one round trip);
                # multi-statement operations open an explicit one.
                kwargs={"row_factory": dict_row, "autocommit": True, **self.settings.connect_kwargs},
                timeout=self.settings.pool_timeout,
                reconnect_timeout=2.0,
                reconnect_failed=self._reconnect_failed,
                name="conveyor",
                open=False,
            )
            await pool.open(wait=False)
            self._pool = pool
        return self._pool

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    def _reconnect_failed(self, pool: AsyncConnectionPool[Any]) -> None:
        self._mark_down()

    def _mark_down(self) -> None:
        if self._down_since is None:
            self._down_since = time.monotonic()

    def _checkout_timeout(self) -> float:
        # While the server is known to be down, fail fast so the API can answer 503 at once
        # instead of holding every request for the full pool timeout.
        if self._down_since is not None:
            return min(self.settings.pool_timeout, DOWN_CHECKOUT_TIMEOUT)
        return self.settings.pool_timeout

    @staticmethod
    async def _alive(conn: AsyncConnection[Any]) -> bool:
        """False for a pooled connection whose server went away (restart, failover, idle kill).

        An idle connection has nothing to read unless the server closed it (or sent a rare
        asynchronous message): only then is it probed with a round trip. So the check is free
        for healthy connections, and a stale one is caught *before* our statements are sent.
        """
        if conn.closed:
            return False
        try:
            readable, _, _ = select.select([conn.pgconn.socket], [], [], 0)
        except (OSError, ValueError, psycopg.Error):
            return False
        if not readable:
            return True
        try:
            await conn.execute("")
        except psycopg.Error:
            return False
        return True

    async def run(
        self,
        fn: Callable[[AsyncConnection[Any]], Awaitable[T]],
        doing: str,
        *,
        tx: bool = True,
        redo_safe: bool = False,
    ) -> T:
        """Run ``fn`` atomically: in one transaction (``tx``), or as the single statement it
        executes (autocommit). See the module docstring for the retry rules."""
        pool = await self.open()
        attempt = 0
        while True:
            attempt += 1
            sent = False
            try:
                async with pool.connection(timeout=self._checkout_timeout()) as conn:
                    if not await self._alive(conn):
                        await conn.close()  # the pool replaces it
                        raise _Stale
                    sent = True
                    if tx:
                        # Not pipelined: psycopg's async pipeline did not measure faster on the
                        # shared test machine, and plain round trips keep error handling simple.
                        async with conn.transaction():
                            result = await fn(conn)
                    else:
                        result = await fn(conn)
                self._down_since = None
                return result
            except _Stale:
                # Nothing was sent: always safe to retry. Its idle siblings died with it.
                self._mark_down()
                if attempt >= 3:
                    raise BackendUnavailable(f"PostgreSQL unavailable while {doing}: connection lost") from None
                with contextlib.suppress(Exception):
                    await pool.drain()
            except PoolTimeout as exc:
                self._mark_down()
                raise unavailable(exc, doing) from exc
            except psycopg.errors.TransactionRollback as exc:
                # deadlock or serialization failure: rolled back by the server, safe to redo
                if attempt >= 5:
                    raise unavailable(exc, doing) from exc
                log.info("retrying %s after %s", doing, type(exc).__name__)
            except psycopg.OperationalError as exc:
                # Lost connection, server shutting down...: until a call succeeds again, wait
                # only briefly for a connection so callers get BackendUnavailable quickly.
                self._mark_down()
                # After the statements were sent, only a redo-safe operation (a read, a lease
                # extension) may be redone: a write may have committed before the connection
                # broke (the caller retries with its key).
                if (sent and not redo_safe) or attempt >= 3:
                    raise unavailable(exc, doing) from exc
                log.info("connection lost while %s (%s); retrying on a fresh connection", doing, exc)
                with contextlib.suppress(Exception):
                    await pool.drain()
            except psycopg.errors.UniqueViolation as exc:
                # the only unique constraint an insert can still hit (keys use ON CONFLICT)
                if exc.diag.constraint_name == "jobs_pkey":
                    raise DuplicateJobId(f"a job with this id already exists ({exc.diag.message_detail})") from None
                raise
            except psycopg.DataError as exc:
                # A value the database refuses (out of range, bad encoding): the input's fault.
                raise InvalidArguments(f"the engine refused a value while {doing}: {_first_line(exc)}") from exc
            except psycopg.InterfaceError as exc:
                # the connection is closed or unusable: the engine, not the statement
                self._mark_down()
                raise unavailable(exc, doing) from exc
            # Any other psycopg.Error (a programming error, a missing table, a constraint) is a
            # bug, not an outage: it propagates as itself (a logged 500, never a 503).


class _Stale(Exception):
    """A pooled connection found dead before anything was sent on it."""
