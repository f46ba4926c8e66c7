"""429 at a queue's depth limit and 503 while the engine is really unavailable; never a 202 for
work that was not stored."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap

from conveyor.app import Conveyor
from tests.api.procs import Env, wait_until
from tests.apps.api_app import LIMITED_DEPTH


def test_full_queue_is_429_with_retry_after_and_202_again_after_draining(env: Env) -> None:
    server = env.serve("--no-auth")
    with server.http() as http:
        body = {"task": "hold", "args": {"seconds": 0.2}}
        accepted = [http.post("/v1/jobs", json=body) for _ in range(LIMITED_DEPTH)]
        assert [r.status_code for r in accepted] == [202] * LIMITED_DEPTH
        full = http.post("/v1/jobs", json=body)
        assert full.status_code == 429
        assert full.headers["content-type"] == "application/problem+json"
        assert int(full.headers["Retry-After"]) >= 1
        assert full.json()["queue"] == "limited"
        stored = http.get("/v1/jobs", params={"queue": "limited", "limit": 200}).json()["jobs"]
        assert len(stored) == LIMITED_DEPTH  # the refused submit left nothing behind
        env.worker()
        wait_until(
            lambda: next(q for q in http.get("/v1/queues").json()["queues"] if q["name"] == "limited")["pending"] == 0,
            what="the limited queue to drain",
        )
        assert http.post("/v1/jobs", json=body).status_code == 202
        # with a drain rate known, Retry-After is derived from it (and still at least 1 s)
        for _ in range(LIMITED_DEPTH - 1):
            http.post("/v1/jobs", json=body)
        wait_until(lambda: http.post("/v1/jobs", json=body).status_code == 429, what="queue to fill again")


LOCKER = textwrap.dedent(
    """
    import sqlite3, sys
    conn = sqlite3.connect(sys.argv[1], isolation_level=None)
    conn.execute("BEGIN EXCLUSIVE")
    print("locked", flush=True)
    sys.stdin.readline()
    conn.execute("ROLLBACK")
    """
)


def test_engine_unavailable_is_503_and_nothing_is_stored(sqlite_env: Env) -> None:
    """SQLite only: another process holding SQLite's write lock is the one outage a test can
    cause without stopping a shared server (PostgreSQL/Redis outages: tests/faults)."""
    env = sqlite_env
    db = env.tmp / "conveyor.db"
    server = env.serve("--no-auth", url=f"sqlite:///{db}?busy_timeout=300")
    with server.http() as http:
        body = {"task": "add", "args": {"a": 1, "b": 2}}
        assert http.post("/v1/jobs", json=body).status_code == 202
        # another process takes SQLite's write lock and holds it: the engine cannot store anything
        locker = subprocess.Popen(
            [sys.executable, "-c", LOCKER, str(db)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        try:
            assert locker.stdout is not None and locker.stdout.readline().strip() == "locked"
            refused = http.post("/v1/jobs", json=body, headers={"Idempotency-Key": "during-outage"})
            assert refused.status_code == 503
            assert refused.headers["content-type"] == "application/problem+json"
            assert int(refused.headers["Retry-After"]) >= 1
        finally:
            assert locker.stdin is not None and locker.stdout is not None
            locker.stdin.write("\n")
            locker.stdin.flush()
            locker.wait(timeout=30)
            locker.stdin.close()  # our ends of its pipes (else a ResourceWarning at GC)
            locker.stdout.close()
        retried = http.post("/v1/jobs", json=body, headers={"Idempotency-Key": "during-outage"})
        assert retried.status_code == 202
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT count(*) FROM jobs").fetchone()[0] == 2
    finally:
        conn.close()


def test_unreachable_engine_is_503_on_submit_and_readyz(sqlite_env: Env) -> None:
    """A PostgreSQL URL nobody listens on: the engine is down for real.

    The test's own engine is not used (the server gets the dead URL), so it runs once.
    """
    env = sqlite_env
    from tests.api.procs import free_port

    url = f"postgresql://postgres@127.0.0.1:{free_port()}/conveyor?connect_timeout=1"
    try:
        Conveyor(url)._make_backend()
    except Exception as exc:  # the PostgreSQL engine is not in this tree
        import pytest

        pytest.skip(f"PostgreSQL engine unavailable: {exc}")
    server = env.serve("--no-auth", url=url)
    with server.http() as http:
        response = http.post("/v1/jobs", json={"task": "add", "args": {"a": 1, "b": 2}})
        assert response.status_code == 503 and int(response.headers["Retry-After"]) >= 1
        ready = http.get("/readyz")
        assert ready.status_code == 503 and ready.json()["status"] == "unavailable"
        assert http.get("/healthz").status_code == 200
