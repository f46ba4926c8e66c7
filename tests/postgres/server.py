"""A private PostgreSQL server process for tests that stop, crash or restart the engine.

The machine's shared server must never be stopped, so these tests run their own cluster:
``initdb`` in a temp dir owned by the ``postgres`` OS user (PostgreSQL refuses to run as
root), a random port, the socket in the data dir. ``stop("immediate")`` is a crash from the
database's point of view: no checkpoint, recovery from WAL at the next start.

``fsync=off``: these tests crash the PostgreSQL processes, never the OS, so the WAL in the page
cache survives and durability is still exercised; it keeps the suite fast on a shared disk.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.engines import IN_CI

BIN = Path(os.environ.get("CONVEYOR_PG_BIN", "/usr/lib/postgresql/15/bin"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_postgres(args: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *args]
    return args


class PrivateServer:
    """One PostgreSQL cluster in a temp dir, started, crashed and restarted by the test."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="conveyor-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = _free_port()
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        os.chmod(self.root, 0o755)

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(_as_postgres(list(args)), capture_output=True, text=True, check=check, timeout=120)

    def init(self) -> PrivateServer:
        self._run(str(BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")
        return self

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c max_connections=60 -c shared_buffers=32MB"
        )
        self._run(str(BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        """``immediate`` kills every server process at once (a crash); ``fast`` is a clean shutdown."""
        self._run(str(BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop", check=False)

    def restart(self, mode: str = "immediate") -> None:
        self.stop(mode)
        self.start()

    @property
    def running(self) -> bool:
        return self._run(str(BIN / "pg_ctl"), "-D", str(self.data), "status", check=False).returncode == 0

    def url(self, database: str = "postgres", **options: str) -> str:
        query = "&".join(f"{k}={v}" for k, v in options.items())
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}" + (f"?{query}" if query else "")

    def create_database(self) -> str:
        import psycopg

        name = f"conveyor_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return name

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


def private_server_available() -> str | None:
    """Why a private server cannot be started here, or None when it can."""
    if not (BIN / "initdb").exists():
        return f"PostgreSQL binaries not found in {BIN} (set CONVEYOR_PG_BIN)"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root without runuser: cannot start PostgreSQL as the postgres user"
    return None


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PrivateServer]:
    """A private PostgreSQL server for the session; tests may crash and restart it."""
    reason = private_server_available()
    if reason is not None:
        if IN_CI:
            pytest.fail(reason)
        pytest.skip(reason)
    server = PrivateServer().init()
    server.start()
    try:
        yield server
    finally:
        server.destroy()


@pytest.fixture
def pg_private_url(pg_server: PrivateServer) -> str:
    """A fresh database on the private server (restarted first if a previous test left it down)."""
    if not pg_server.running:
        pg_server.start()
    return pg_server.url(pg_server.create_database())
