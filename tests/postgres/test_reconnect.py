"""A database restart never needs an operator: calls fail with BackendUnavailable while the
server is down, and the first call after it is back works, on the same engine object.

Runs against a private PostgreSQL server (tests/postgres/server.py) that the test crashes with
``pg_ctl stop -m immediate`` and starts again.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from conveyor.app import Conveyor
from conveyor.backend.postgres.backend import PostgresBackend
from conveyor.backend.protocol import ClaimRequest, CompleteRequest, EnqueueRequest
from conveyor.errors import BackendUnavailable
from conveyor.types import JobState
from tests.postgres.server import PrivateServer

pytestmark = pytest.mark.faults


def req(queue: str = "q") -> EnqueueRequest:
    return EnqueueRequest(task="t", args={}, queue=queue)


async def test_engine_survives_a_crash_restart(pg_server: PrivateServer, pg_private_url: str) -> None:
    backend = PostgresBackend(pg_private_url + "?pool_size=3&pool_min=3")
    await backend.open()
    try:
        before = (await backend.enqueue(req())).job
        await backend.wait_for_work(("q",), 0.5)  # starts the LISTEN connection

        pg_server.stop("immediate")
        for call in (
            lambda: backend.enqueue(req()),
            lambda: backend.get(before.id),
            lambda: backend.claim(ClaimRequest("w", ("q",), 5)),
            backend.ping,
        ):
            with pytest.raises(BackendUnavailable) as info:
                await call()
            assert "\n" not in str(info.value)
        await backend.wait_for_work(("q",), 0.2)  # no error while the server is down, just a wait

        pg_server.start()
        # the very first call after the restart works: stale pooled connections are replaced
        after = (await backend.enqueue(req())).job
        committed = await backend.get(before.id)
        assert committed is not None and committed.state is JobState.QUEUED  # survived the crash
        jobs = await backend.claim(ClaimRequest("w", ("q",), 5))
        assert sorted(j.id for j in jobs) == sorted([before.id, after.id])
        for job in jobs:
            assert job.lease_token is not None
            assert await backend.complete(CompleteRequest(job.id, job.lease_token, "ok"))
    finally:
        await backend.close()


async def test_wake_ups_resume_after_a_restart(pg_server: PrivateServer, pg_private_url: str) -> None:
    """The LISTEN connection reconnects by itself; an idle waiter is woken by new work again."""
    waiter = PostgresBackend(pg_private_url)
    producer = PostgresBackend(pg_private_url)
    await waiter.open()
    await producer.open()
    try:
        await waiter.wait_for_work(("q",), 1.0)
        pg_server.restart("immediate")
        await producer.ping()

        # Waits return (by notification, by the reconnect wake-up or by timeout) and never raise.
        # Once the listener is back, an enqueue wakes a waiter that would otherwise sleep 60 s.
        async def wait_long() -> None:
            await waiter.wait_for_work(("q",), 60.0)

        for _ in range(200):
            task = asyncio.create_task(wait_long())
            await asyncio.sleep(0.05)
            if task.done():
                continue  # woken by the reconnect itself; wait again
            await producer.enqueue(req())
            await asyncio.wait_for(task, 30.0)
            break
        else:
            pytest.fail("waiter never settled into a real wait after the restart")
    finally:
        await waiter.close()
        await producer.close()


def test_app_sync_api_survives_a_restart(pg_server: PrivateServer, pg_private_url: str, tmp_path: Path) -> None:
    """What the HTTP API relies on: BackendUnavailable while down (503), working again after."""
    app = Conveyor(pg_private_url, result_store=str(tmp_path / "results"))

    @app.task(name="noop")
    def noop() -> None:
        return None

    try:
        first = app.enqueue("noop", {})
        pg_server.stop("immediate")
        with pytest.raises(BackendUnavailable):
            app.enqueue("noop", {})
        with pytest.raises(BackendUnavailable):
            app.get(first.id)
        pg_server.start()
        second = app.enqueue("noop", {})
        found = app.get(first.id)
        assert found is not None and found.state is JobState.QUEUED
        assert {j.id for j in app.list_jobs().jobs} == {first.id, second.id}
    finally:
        app.close()
