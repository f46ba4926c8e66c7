"""Start real worker nodes as subprocesses, signal them, and wait for conditions.

Shared by the worker tests and the fault tests of every engine. A node is
``python -m conveyor worker`` in its own session (so a signal to it never reaches pytest),
logging to a file the test can search. Waiting is always on a condition with a generous
deadline, never on a wall-clock assertion.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest

from conveyor.app import Conveyor
from conveyor.types import Job, JobState
from tests.apps.basic import make_app
from tests.engines import ENGINES, engine_url

REPO = Path(__file__).resolve().parents[2]
BASIC_APP = "tests.apps.basic:app"
DEADLINE = 60.0
T = TypeVar("T")


def wait_until(
    condition: Callable[[], T | None], timeout: float = DEADLINE, interval: float = 0.05, message: str = "condition"
) -> T:
    """Poll ``condition`` until it returns a truthy value; return it, or fail the test at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {message}")
        time.sleep(interval)


def child_pids(pid: int) -> list[int]:
    """Direct children of a process (from /proc), e.g. a node's executor processes."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                stat = handle.read()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            out.append(int(entry))
    return out


def pid_alive(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class WorkerNode:
    """One ``conveyor worker`` subprocess."""

    def __init__(
        self,
        url: str,
        log_dir: Path,
        *,
        app: str = BASIC_APP,
        queues: str = "default",
        concurrency: int = 2,
        lease: float = 2.0,
        heartbeat: float = 0.3,
        grace: float = 10.0,
        worker_id: str | None = None,
        extra: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
        log_level: str = "debug",
    ) -> None:
        """``log_level`` is debug by default: the tests follow jobs by their per-job lines
        (``job.start``, a successful ``job.finish``), which a node logs at DEBUG only."""
        self.url = url
        self.id = worker_id or f"node-{uuid.uuid4().hex[:6]}"
        self.log_path = log_dir / f"{self.id}.log"
        self.args = [
            sys.executable,
            "-m",
            "conveyor",
            "worker",
            "--app",
            app,
            "--queues",
            queues,
            "--concurrency",
            str(concurrency),
            "--lease",
            str(lease),
            "--heartbeat",
            str(heartbeat),
            "--grace",
            str(grace),
            "--id",
            self.id,
            "--log-level",
            log_level,
            *extra,
        ]
        self.env = {**os.environ, "CONVEYOR_URL": url, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerNode:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.args, cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None, "node not started"
        return self.proc.pid

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: signal.Signals) -> None:
        """Signal the supervisor process only (its executors are not touched)."""
        os.kill(self.pid, sig)

    def kill(self) -> None:
        """SIGKILL the supervisor; its executors die with it (PR_SET_PDEATHSIG)."""
        if self.running:
            self.signal(signal.SIGKILL)
            self.wait(timeout=30)

    def wait(self, timeout: float = DEADLINE) -> int:
        assert self.proc is not None
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"worker {self.id} did not exit within {timeout:g} s; log:\n{self.log()[-3000:]}")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_for_log(self, pattern: str, timeout: float = DEADLINE) -> re.Match[str]:
        """Wait until the node's log has a line matching the regex ``pattern``."""
        regex = re.compile(pattern)

        def found() -> re.Match[str] | None:
            if self.proc is not None and self.proc.poll() is not None:
                match = regex.search(self.log())
                if match is None:
                    pytest.fail(f"worker {self.id} exited ({self.proc.returncode}); log:\n{self.log()[-3000:]}")
                return match
            return regex.search(self.log())

        return wait_until(found, timeout, message=f"log line /{pattern}/ from {self.id}")

    def executor_pids(self) -> list[int]:
        return child_pids(self.pid) if self.running else []

    def close(self) -> None:
        """Make sure nothing of this node survives the test."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.killpg(self.pid, signal.SIGCONT)
                os.killpg(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=30)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)


class Cluster:
    """The nodes of one test and a client app to submit and inspect jobs."""

    def __init__(self, url: str, tmp_path: Path) -> None:
        self.url = url
        self.tmp_path = tmp_path
        self.nodes: list[WorkerNode] = []
        self.app: Conveyor = make_app(url, results=str(tmp_path / "results"))

    def node(self, **kwargs: Any) -> WorkerNode:
        """Start a worker node (keyword arguments as for WorkerNode)."""
        env = {"CONVEYOR_RESULTS": str(self.tmp_path / "results"), **kwargs.pop("env", {})}
        node = WorkerNode(self.url, self.tmp_path / "logs", env=env, **kwargs).start()
        self.nodes.append(node)
        return node

    def get(self, job_id: str) -> Job:
        job = self.app.get(job_id)
        assert job is not None, f"job {job_id} vanished"
        return job

    def wait_state(self, job_id: str, *states: JobState | str, timeout: float = DEADLINE) -> Job:
        wanted = {JobState(s) for s in states}

        def reached() -> Job | None:
            job = self.get(job_id)
            return job if job.state in wanted else None

        try:
            return wait_until(reached, timeout, message=f"job {job_id} to be {'/'.join(map(str, wanted))}")
        except pytest.fail.Exception:
            job = self.get(job_id)
            logs = "\n".join(f"--- {n.id}\n{n.log()[-2000:]}" for n in self.nodes)
            pytest.fail(f"job {job_id} is {job.state} (attempts {job.attempts}, error {job.error}); logs:\n{logs}")

    def wait_all(self, job_ids: list[str], *states: JobState | str, timeout: float = DEADLINE) -> list[Job]:
        """Wait until every job is terminal; return them (the caller asserts on their states)."""
        wanted = {JobState(s) for s in states} if states else None
        pending = set(job_ids)

        def done() -> bool:
            for job_id in list(pending):
                job = self.get(job_id)
                if (job.state in wanted) if wanted else job.terminal:
                    pending.discard(job_id)
            return not pending

        wait_until(done, timeout, interval=0.2, message=f"{len(pending)} of {len(job_ids)} jobs to finish")
        return [self.get(j) for j in job_ids]

    def close(self) -> None:
        for node in self.nodes:
            node.close()
        self.app.close()


WORKER_ENGINES = tuple(
    e.strip() for e in os.environ.get("CONVEYOR_WORKER_ENGINES", ",".join(ENGINES)).split(",") if e.strip()
)
"""Engines the worker and fault tests run on: every engine of tests.engines.ENGINES (all three by
default); ``CONVEYOR_WORKER_ENGINES=sqlite`` narrows it by hand."""


@contextmanager
def engine_cluster(engine: str, tmp_path: Path) -> Iterator[Cluster]:
    """A Cluster on a fresh store of ``engine``; every node is killed and the store dropped after."""
    with engine_url(engine, tmp_path) as url:
        c = Cluster(url, tmp_path)
        try:
            yield c
        finally:
            c.close()


@pytest.fixture(params=WORKER_ENGINES, ids=list(WORKER_ENGINES))
def cluster(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Cluster]:
    """Worker nodes on a fresh store, once per engine of WORKER_ENGINES (all three by default)."""
    with engine_cluster(request.param, tmp_path) as c:
        yield c


# -- fault helpers --------------------------------------------------------------------------------


def running_on(cluster: Cluster, node: WorkerNode) -> list[str]:
    """Ids of the jobs the engine says are running on ``node``."""
    page = cluster.app.list_jobs(states=[JobState.RUNNING], limit=1000)
    return [j.id for j in page.jobs if j.worker_id == node.id]


def engine_write_lock_free(url: str) -> bool:
    """SQLite only: True when no process holds the database write lock (always True elsewhere).

    A SQLite writer frozen by SIGSTOP inside a transaction blocks every other node until it
    resumes (an engine limit, documented); fault tests freeze nodes outside transactions.
    """
    if not url.startswith("sqlite:"):
        return True
    from conveyor.backend.sqlite.backend import parse_sqlite_url

    conn = sqlite3.connect(parse_sqlite_url(url)[0], timeout=0.2, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        conn.close()


def freeze(node: WorkerNode, url: str) -> None:
    """SIGSTOP the node's supervisor (not its executors) while it holds no engine write lock."""
    for _ in range(100):
        node.signal(signal.SIGSTOP)
        if engine_write_lock_free(url):
            return
        node.signal(signal.SIGCONT)
        time.sleep(0.02)
    pytest.fail("could not freeze the node outside a write transaction")


def engine_sockets(pid: int) -> set[int]:
    """Local TCP ports of the sockets process ``pid`` holds (its engine connections, among others).

    Read from /proc while the process still exists (e.g. frozen), so that after killing it the
    test can wait for the engine to drop exactly those sessions (wait_engine_forgot).
    """
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as handle:
            for line in list(handle)[1:]:
                fields = line.split()
                if fields[9] in inodes:
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def engine_sessions(url: str, ports: set[int]) -> set[int]:
    """Which of the client ``ports`` the engine behind ``url`` still has a session for.

    A server engine executes what a client sent, in order, before it notices the client is
    gone; once a killed client's sessions are gone, nothing it sent can still change a job.
    SQLite has no sessions: a frozen node outside a write transaction (see freeze) has nothing
    in flight.
    """
    if not ports or url.startswith("sqlite:"):
        return set()
    if url.startswith("postgres"):
        import psycopg

        from tests.engines import PG_ADMIN_URL

        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT client_port FROM pg_stat_activity WHERE client_port = ANY(%s)", (sorted(ports),)
            ).fetchall()
        return {int(row[0]) for row in rows}
    if url.startswith("redis"):
        import redis

        from tests.engines import REDIS_URL

        client = redis.Redis.from_url(REDIS_URL)
        try:
            clients = client.client_list()
        finally:
            client.close()
        return {port for c in clients if (port := int(str(c["addr"]).rsplit(":", 1)[1])) in ports}
    raise ValueError(f"unknown engine URL {url!r}")


def wait_engine_forgot(url: str, ports: set[int]) -> None:
    """Wait until the engine has closed every session of a killed process (see engine_sessions)."""
    wait_until(lambda: not engine_sessions(url, ports), message=f"the engine to drop the sessions of ports {ports}")
