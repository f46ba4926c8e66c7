"""A private redis-server process for tests that kill or restart Redis.

Runs in the foreground as a child process (so a test can SIGKILL exactly it), in a temp dir,
on a free port, with the persistence settings under test. ``restart()`` starts a new process
on the same dir and port, so Redis reloads whatever it had persisted.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import redis

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """``persistence``: "none", "rdb", "everysec" or "always" (AOF with that fsync policy)."""

    def __init__(self, directory: Path, persistence: str = "always", port: int | None = None) -> None:
        if persistence not in ("none", "rdb", "everysec", "always"):
            raise ValueError(persistence)
        self.dir = directory
        self.persistence = persistence
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _args(self) -> list[str]:
        args = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir)]
        args += ["--daemonize", "no", "--protected-mode", "no", "--logfile", str(self.dir / "redis.log")]
        if self.persistence == "none":
            args += ["--save", "", "--appendonly", "no"]
        elif self.persistence == "rdb":
            # Redis' default snapshot schedule: the last snapshot is all a crash keeps.
            args += ["--save", "3600 1 300 100 60 10000", "--appendonly", "no"]
        else:
            args += ["--save", "", "--appendonly", "yes", "--appendfsync", self.persistence]
        return args

    def start(self, timeout: float = 30.0) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(self._args(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.proc.returncode}: {self.log_tail()}")
            try:
                client = redis.Redis(port=self.port, socket_timeout=1)
                client.ping()  # raises BusyLoadingError while the AOF/RDB is being loaded
                client.close()
                return
            except redis.RedisError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not start on port {self.port}: {self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown save, no final fsync, exactly like a crash."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None

    def restart(self) -> None:
        self.kill()
        self.start()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    def log_tail(self) -> str:
        log = self.dir / "redis.log"
        return log.read_text(errors="replace")[-2000:] if log.exists() else ""
