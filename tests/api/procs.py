"""Real processes for the API tests: ``conveyor serve`` and ``conveyor worker`` on one engine.

Tests talk to the server over TCP exactly as a user would; nothing is mocked or in-process.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[2]
APP = "tests.apps.api_app:app"
QUEUES = "default,limited"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check: Callable[[], Any], timeout: float = 60.0, interval: float = 0.05, what: str = "condition") -> Any:
    """Poll ``check`` until it returns something truthy; fail after a generous deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)


async def _store_key(url: str, scopes: tuple[str, ...], tenant: str) -> str:
    from conveyor.api.keys import new_key
    from conveyor.backend import create_backend

    request, token = new_key("test", tenant, scopes)
    backend = create_backend(url)
    try:
        await backend.open()
        await backend.create_key(request)
    finally:
        await backend.close()
    return token


@dataclass
class Env:
    """One fresh engine plus the environment every process of a test shares."""

    url: str
    tmp: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def environ(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
        env.update(
            CONVEYOR_URL=self.url,
            CONVEYOR_RESULTS=str(self.tmp / "results"),
            PYTHONPATH=str(REPO) + os.pathsep + env.get("PYTHONPATH", ""),
            PYTHONUNBUFFERED="1",
        )
        return env

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "conveyor", *args],
            cwd=REPO,
            env=self.environ,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def create_key(self, *scopes: str, tenant: str = "default", cli: bool = False) -> str:
        """A new API key; through ``conveyor keys create`` with ``cli``, else straight into the store."""
        if not cli:
            return asyncio.run(_store_key(self.url, scopes, tenant))
        args = ["keys", "create", "--app", APP, "--tenant", tenant]
        for scope in scopes:
            args += ["--scope", scope]
        done = self.cli(*args)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    def _spawn(self, args: list[str], log: str, url: str | None = None) -> subprocess.Popen[bytes]:
        env = self.environ
        if url is not None:
            env["CONVEYOR_URL"] = url
        with open(self.tmp / log, "ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "conveyor", *args], cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT
            )
        self.procs.append(proc)
        return proc

    def serve(self, *extra: str, url: str | None = None, app: str = APP) -> Server:
        port = free_port()
        proc = self._spawn(["serve", "--app", app, "--port", str(port), *extra], f"serve-{port}.log", url)
        server = Server(f"http://127.0.0.1:{port}", proc, self.tmp / f"serve-{port}.log")
        server.wait_ready()
        return server

    def worker(self, concurrency: int = 2) -> subprocess.Popen[bytes]:
        args = ["worker", "--app", APP, "--queues", QUEUES, "--concurrency", str(concurrency), "--lease", "2"]
        return self._spawn(args, "worker.log")

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def stop_all(self) -> None:
        for proc in reversed(self.procs):
            self.stop(proc)


@dataclass
class Server:
    url: str
    proc: subprocess.Popen[bytes]
    log: Path

    def wait_ready(self) -> None:
        def up() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited:\n{self.log.read_text()}")
            try:
                return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(up, timeout=60, what="server to listen")

    def http(self, key: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)
