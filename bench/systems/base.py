"""The interface every adapter implements, and the namespace helpers they share.

An adapter runs inside the system's own interpreter (see bench/venvs.py). It knows how to
enqueue the no-op task one job at a time and in batches, how to enqueue the pickup probe,
and which command starts one worker node. Each measurement phase gets a fresh namespace
(a new PostgreSQL database, or an emptied Redis database index), dropped afterwards.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

PG_ADMIN_URL = os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/15")
# Systems that can prefix their keys (Conveyor) share the test suite's database index and only
# ever delete their own prefix, so a smoke run never wipes a concurrent run's keys.
PREFIXED_REDIS_URL = os.environ.get("BENCH_REDIS_PREFIXED", "redis://127.0.0.1:6379/0")
QUEUE = "bench"


class NotSupported(Exception):
    """The library has no such feature (e.g. no batch enqueue API); recorded as a note."""


class System:
    """Base adapter. Subclasses set ``name`` and override the enqueue/worker methods."""

    name = "base"
    redis_prefixed = False
    """True when the system takes a key prefix: it then gets one of its own instead of FLUSHDB."""
    concurrency_note = ""
    batch_note = ""

    def __init__(self, engine: str, workdir: Path, concurrency: int) -> None:
        self.engine = engine
        self.workdir = workdir
        self.concurrency = concurrency
        self.url = ""
        self._pg_db: str | None = None
        self.redis_prefix = ""

    # -- namespace ------------------------------------------------------------------------

    def setup(self) -> None:
        """Make a fresh, empty namespace and point ``self.url`` at it."""
        if self.engine == "postgres":
            self._pg_db = f"bench_{self.name.replace('-', '_')}_{uuid.uuid4().hex[:8]}"
            psql(PG_ADMIN_URL, f'CREATE DATABASE "{self._pg_db}"')
            parts = urlsplit(PG_ADMIN_URL)
            self.url = urlunsplit(parts._replace(path=f"/{self._pg_db}"))
        elif self.engine == "redis" and self.redis_prefixed:
            self.redis_prefix = f"bench-{uuid.uuid4().hex[:10]}"
            self.url = PREFIXED_REDIS_URL
        elif self.engine == "redis":
            flush_redis(REDIS_URL)
            self.url = REDIS_URL
        else:
            self.url = f"sqlite:///{self.workdir / f'{uuid.uuid4().hex[:8]}.db'}"
        # the app modules read these at import, in the workers and in this (producer) process alike
        os.environ.update(self.worker_env())
        self.open()

    def teardown(self) -> None:
        self.close()
        if self._pg_db:
            psql(PG_ADMIN_URL, f'DROP DATABASE IF EXISTS "{self._pg_db}" WITH (FORCE)')
            self._pg_db = None
        elif self.engine == "redis" and self.redis_prefix:
            delete_prefix(PREFIXED_REDIS_URL, self.redis_prefix)
        elif self.engine == "redis":
            flush_redis(REDIS_URL)

    def open(self) -> None:
        """Connect the producer side (and create the library's schema if it needs one)."""

    def close(self) -> None:
        """Close the producer side."""

    # -- producer -------------------------------------------------------------------------

    def enqueue_single(self, n: int) -> None:
        raise NotImplementedError

    def enqueue_batch(self, n: int) -> None:
        raise NotSupported("no batch enqueue API")

    def enqueue_probe(self, stamp: float) -> None:
        raise NotImplementedError

    # -- worker ---------------------------------------------------------------------------

    def worker_command(self) -> list[str]:
        """argv of one worker node (run from the repo root with the system's interpreter)."""
        raise NotImplementedError

    def worker_env(self) -> dict[str, str]:
        """Extra environment for the worker node (the app modules read BENCH_URL)."""
        return {"BENCH_URL": self.url, "BENCH_CONCURRENCY": str(self.concurrency)}


def psql(url: str, sql: str) -> str:
    out = subprocess.run(
        ["psql", url, "-v", "ON_ERROR_STOP=1", "-qAtc", sql], check=True, capture_output=True, text=True
    )
    return out.stdout


def _redis_cli(url: str) -> list[str]:
    parts = urlsplit(url)
    db = (parts.path or "/0").lstrip("/") or "0"
    return ["redis-cli", "-h", parts.hostname or "127.0.0.1", "-p", str(parts.port or 6379), "-n", db]


def delete_prefix(url: str, prefix: str) -> None:
    """Delete every key under ``prefix`` (and nothing else)."""
    cli = _redis_cli(url)
    keys = subprocess.run(
        [*cli, "--scan", "--pattern", f"{prefix}*"], check=True, capture_output=True, text=True
    ).stdout.split()
    for i in range(0, len(keys), 500):
        subprocess.run([*cli, "DEL", *keys[i : i + 500]], check=True, capture_output=True)


def flush_redis(url: str) -> None:
    """Empty the bench's own Redis database index (never the one the test suite uses)."""
    parts = urlsplit(url)
    db = (parts.path or "/0").lstrip("/") or "0"
    if db == "0":
        raise RuntimeError("refusing to FLUSHDB Redis database 0; point BENCH_REDIS at a spare index")
    subprocess.run(
        ["redis-cli", "-h", parts.hostname or "127.0.0.1", "-p", str(parts.port or 6379), "-n", db, "FLUSHDB"],
        check=True,
        capture_output=True,
    )
