"""Disk full: the engine's storage fills up under a running job service (the real HTTP app).

* SQLite: the database file lives on a small tmpfs of its own (``mount -t tmpfs -o size=..``).
* PostgreSQL: a private cluster whose test database lives in a tablespace on a small tmpfs
  (the WAL stays on the cluster's own disk: the relation files are what fills up).
* Redis: a private redis-server with ``maxmemory`` and ``noeviction`` (Redis' disk is RAM).

The test fills the space with a filler (a file; a Redis key), then checks: every submit answers
503 ``application/problem+json`` with ``Retry-After`` and a message naming the cause, never a
202 for work that was not stored; every job accepted before is still there; once the filler is
removed, the same server process accepts again without a restart, and a worker runs every
accepted job to the end (the ledger).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.api.procs import Env, wait_until
from tests.engines import unavailable
from tests.postgres.server import PrivateServer, pg_server
from tests.redis.server import REDIS_SERVER, RedisServer

__all__ = ["pg_server"]  # fixture

pytestmark = pytest.mark.chaos
ENGINES = ("sqlite", "postgres", "redis")


@dataclass
class Store:
    url: str
    fill: Callable[[], None]
    free: Callable[[], None]
    cause: str
    """A word the 503's detail must contain."""


@contextlib.contextmanager
def tmpfs(path: Path, size: str, owner: str | None = None) -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)], capture_output=True
    )
    if done.returncode != 0:
        unavailable(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        if owner:
            shutil.chown(path, owner, owner)
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def filler(directory: Path) -> tuple[Callable[[], None], Callable[[], None]]:
    """(fill, free): write a file until the file system is full; delete it."""
    target = directory / "filler"

    def fill() -> None:
        with open(target, "ab", buffering=0) as out:
            block = b"\0" * 65536
            try:
                while True:
                    out.write(block)
                    out.flush()
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
            with contextlib.suppress(OSError):  # the last partial block too
                while True:
                    out.write(b"\0" * 512)
                    out.flush()

    def free() -> None:
        target.unlink(missing_ok=True)

    return fill, free


@pytest.fixture(params=ENGINES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if os.geteuid() != 0:
        unavailable("mounting a small tmpfs needs root")
    if request.param == "sqlite":
        with tmpfs(tmp_path / "disk", "4m") as disk:
            fill, free = filler(disk)
            yield Store(f"sqlite:///{disk / 'conveyor.db'}", fill, free, "full")
            free()
    elif request.param == "postgres":
        server: PrivateServer = request.getfixturevalue("pg_server")
        if not server.running:
            server.start()
        # under the server's own root: the postgres user cannot enter pytest's 0700 temp dirs
        with tmpfs(server.root / f"space-{uuid.uuid4().hex[:8]}", "24m", owner="postgres") as space:
            import psycopg

            name, tablespace = f"full_{uuid.uuid4().hex[:8]}", f"ts_{uuid.uuid4().hex[:8]}"
            with psycopg.connect(server.url(), autocommit=True) as conn:
                conn.execute(f"CREATE TABLESPACE {tablespace} LOCATION '{space}'")
                conn.execute(f'CREATE DATABASE "{name}" TABLESPACE {tablespace}')
            fill, free = filler(space)
            try:
                yield Store(server.url(name), fill, free, "space")
            finally:
                free()
                with psycopg.connect(server.url(), autocommit=True) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                    conn.execute(f"DROP TABLESPACE IF EXISTS {tablespace}")
    else:
        if not Path(REDIS_SERVER).exists():
            unavailable("redis-server binary not found")
        redis_server = RedisServer(tmp_path / "redis", "none")
        redis_server.start()
        import redis

        client = redis.Redis(port=redis_server.port)
        client.config_set("maxmemory-policy", "noeviction")

        def fill() -> None:
            # 2 MB of filler, then maxmemory just below what is used: every write is refused
            for i in range(32):
                client.set(f"filler:{i}", "x" * 65536)
            used = int(client.info("memory")["used_memory"])
            client.config_set("maxmemory", str(used - 512 * 1024))

        def free() -> None:
            keys = list(client.scan_iter("filler:*", count=1000))
            for i in range(0, len(keys), 500):
                client.delete(*keys[i : i + 500])

        try:
            yield Store(f"{redis_server.url}?prefix=full", fill, free, "maxmemory")
        finally:
            client.close()
            redis_server.stop()


def test_full_storage_answers_503_keeps_what_was_accepted_and_recovers_by_itself(store: Store, tmp_path: Path) -> None:
    env = Env(store.url, tmp_path)
    try:
        server = env.serve("--no-auth")
        with server.http() as http:
            accepted = []
            for i in range(20):
                answer = http.post("/v1/jobs", json={"task": "add", "args": {"a": i, "b": 1}})
                assert answer.status_code == 202, answer.text
                accepted.append(answer.json()["id"])

            store.fill()
            # Free room left inside the engine's files (a half-empty page) may still take a few
            # jobs: those are stored and answered 202. Once it is used up, every submit is a 503.
            refused_in_a_row = 0
            for i in range(500):
                answer = http.post("/v1/jobs", json={"task": "add", "args": {"a": 1000 + i, "b": 1}})
                if answer.status_code == 202:
                    accepted.append(answer.json()["id"])
                    refused_in_a_row = 0
                    continue
                assert answer.status_code == 503, answer.text
                assert answer.headers["content-type"] == "application/problem+json"
                assert int(answer.headers["Retry-After"]) >= 1
                assert store.cause.lower() in answer.json()["detail"].lower(), answer.json()
                refused_in_a_row += 1
                if refused_in_a_row == 10:
                    break
            assert refused_in_a_row == 10, "a full engine must refuse every submit"
            assert server.proc.poll() is None

            store.free()  # space returns: the same server accepts again, no restart
            wait_until(
                lambda: http.post("/v1/jobs", json={"task": "add", "args": {"a": 7, "b": 1}}).status_code == 202,
                what="submits to be accepted again",
            )
            env.worker()
            for job_id in accepted:  # nothing accepted was lost: each runs to the end
                wait_until(
                    lambda j=job_id: http.get(f"/v1/jobs/{j}").json()["state"] == "succeeded",
                    timeout=120,
                    what=f"accepted job {job_id} to succeed",
                )
            assert server.proc.poll() is None
    finally:
        env.stop_all()
