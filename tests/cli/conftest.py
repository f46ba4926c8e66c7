"""Run the real ``conveyor`` command as a subprocess against a fresh store per test, on every engine.

Setup that the CLI cannot do itself (put a job in ``failed``, give it an artifact) goes
through the same engine in-process with the backend protocol: real transitions, no mocks.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from conveyor.app import Conveyor
from conveyor.backend.protocol import ClaimRequest, EnqueueRequest, FailRequest
from conveyor.types import Job, JobState
from tests.engines import ENGINES, engine_url

REPO = Path(__file__).resolve().parents[2]
EXAMPLES_APP = "examples.app:app"
SERVER_START_DEADLINE = 120.0


@dataclass
class Cli:
    """``cli("jobs", "ls")`` runs ``python -m conveyor jobs ls`` with this test's store."""

    env: dict[str, str]
    url: str
    tmp: Path
    apps: list[Conveyor] = field(default_factory=list)

    def __call__(
        self, *args: str, timeout: float = 120, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "conveyor", *args],
            cwd=REPO,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "conveyor", *args],
            cwd=REPO,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def app(self) -> Conveyor:
        """A bare in-process app on the same store, for setup and for checking results."""
        conveyor = Conveyor(self.url, result_store=str(self.tmp / "results"))
        self.apps.append(conveyor)
        return conveyor

    def submit(self, *args: str) -> str:
        """Submit locally through the examples app and return the new job's id."""
        result = self("submit", *args, "--app", EXAMPLES_APP)
        assert result.returncode == 0, result.stderr
        return result.stdout.strip().splitlines()[0]


def cli_environ(url: str, tmp: Path) -> dict[str, str]:
    """The environment of every ``conveyor`` process of one test: its store, results and examples DB."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
    env.update(
        CONVEYOR_URL=url,
        CONVEYOR_RESULTS=str(tmp / "results"),
        EXAMPLES_DB=str(tmp / "examples.db"),
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        NO_COLOR="1",
    )
    return env


@pytest.fixture(params=ENGINES, ids=list(ENGINES))
def cli(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Cli]:
    """The CLI on a fresh store, once per engine of tests.engines.ENGINES."""
    with engine_url(request.param, tmp_path) as url:
        runner = Cli(cli_environ(url, tmp_path), url, tmp_path)
        try:
            yield runner
        finally:
            for conveyor in runner.apps:
                conveyor.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module", params=ENGINES, ids=list(ENGINES))
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cli, str]]:
    """``conveyor serve --workers 1 --no-auth`` on a private store, one per test module and engine."""
    tmp = tmp_path_factory.mktemp("remote")
    with engine_url(request.param, tmp, private=True) as url:
        yield from _server(cli_environ(url, tmp), tmp)


def _server(env: dict[str, str], tmp: Path) -> Iterator[tuple[Cli, str]]:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "conveyor", "serve", "--app", EXAMPLES_APP, "--port", str(port)]
    command += ["--workers", "1", "--concurrency", "1", "--no-auth", "--log-level", "warning"]
    proc = start_group(command, env, tmp / "serve.log")
    try:
        end = time.monotonic() + SERVER_START_DEADLINE
        while True:
            assert proc.poll() is None, (tmp / "serve.log").read_text()
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < end, "job service did not start"
            time.sleep(0.2)
        yield Cli(env, env["CONVEYOR_URL"], tmp), base
    finally:
        stop_group(proc)


def _live_members(pgid: int) -> list[int]:
    """Pids of the process group that are still running (zombies excluded)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            pids.append(int(stat.parent.name))
    return pids


def start_group(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Start a long-running ``conveyor`` process in its own process group (see stop_group)."""
    with log.open("w") as out:
        return subprocess.Popen(
            command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def stop_group(proc: subprocess.Popen[bytes], deadline: float = 60.0) -> None:
    """SIGTERM the whole group (the process and any worker nodes it started), SIGKILL stragglers.

    Signalling the group, not just the leader, means a child that outlives its parent (or a
    parent that dies before stopping its children) is still stopped when the test ends.
    """
    pgid = proc.pid
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    end = time.monotonic() + deadline
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=deadline)
    while _live_members(pgid) and time.monotonic() < end:
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    proc.wait()


def assert_one_line_error(result: subprocess.CompletedProcess[str], *expected: str) -> str:
    """Non-zero exit, exactly one line on stderr that starts with ``error:``, no traceback."""
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    for text in expected:
        assert text in lines[0], lines[0]
    return lines[0]


def enqueue(app: Conveyor, task: str = "flaky", queue: str = "default", **fields: Any) -> Job:
    request = EnqueueRequest(task=task, args=fields.pop("args", {}), queue=queue, **fields)
    return app.run_sync(lambda b: b.enqueue(request)).job


def claim_one(app: Conveyor, queue: str) -> Job:
    jobs = app.run_sync(lambda b: b.claim(ClaimRequest("test-worker", (queue,), 1, 30.0)))
    assert len(jobs) == 1
    return jobs[0]


def make_failed(app: Conveyor, queue: str, task: str = "flaky", message: str = "disk full") -> Job:
    """A job in the dead-letter set: claimed once and failed without retry."""
    job = enqueue(app, task, queue, priority=1000)
    claimed = claim_one(app, queue)
    assert claimed.id == job.id
    error = {"type": "OSError", "message": message}
    state = app.run_sync(lambda b: b.fail(FailRequest(job.id, claimed.lease_token or "", error, JobState.FAILED)))
    assert state is not None and state.value == "failed"
    return job
