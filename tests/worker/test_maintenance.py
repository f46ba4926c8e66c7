"""Maintenance every node runs: reap expired leases, promote due jobs, prune old finished jobs."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from conveyor.backend import Backend, create_backend
from conveyor.backend.protocol import ClaimRequest, CompleteRequest, EnqueueRequest
from conveyor.types import JobState
from conveyor.worker.config import DAY, MaintenanceConfig
from conveyor.worker.maintenance import Maintenance, jittered
from tests.engines import ENGINES, engine_url


@pytest.fixture(params=ENGINES, ids=list(ENGINES))
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    with engine_url(request.param, tmp_path) as url:
        engine = create_backend(url)
        await engine.open()
        try:
            yield engine
        finally:
            await engine.close()


async def test_reap_requeues_a_job_whose_worker_vanished(backend: Backend) -> None:
    job = (await backend.enqueue(EnqueueRequest(task="t", args={}))).job
    [claimed] = await backend.claim(ClaimRequest("gone-worker", ("default",), 1, lease_seconds=5))
    maintenance = Maintenance(backend, MaintenanceConfig())
    await maintenance.reap()
    assert (await backend.get(job.id)).state is JobState.RUNNING  # lease still valid
    backend.clock_offset = 6
    await maintenance.reap()
    reaped = await backend.get(job.id)
    assert reaped.state is JobState.QUEUED
    assert reaped.error is not None and reaped.error["type"] == "LeaseExpired"
    assert claimed.attempts == reaped.attempts == 1


async def test_promote_moves_due_jobs_to_the_queue(backend: Backend) -> None:
    job = (await backend.enqueue(EnqueueRequest(task="t", args={}, delay=60))).job
    maintenance = Maintenance(backend, MaintenanceConfig())
    await maintenance.promote()
    assert (await backend.get(job.id)).state is JobState.SCHEDULED
    backend.clock_offset = 61
    await maintenance.promote()
    assert (await backend.get(job.id)).state is JobState.QUEUED


async def test_prune_keeps_finished_jobs_for_the_retention_period(backend: Backend) -> None:
    job = (await backend.enqueue(EnqueueRequest(task="t", args={}))).job
    pending = (await backend.enqueue(EnqueueRequest(task="t", args={}, delay=30 * DAY))).job
    [claimed] = await backend.claim(ClaimRequest("w", ("default",), 1))
    assert claimed.lease_token is not None
    assert await backend.complete(CompleteRequest(job.id, claimed.lease_token, 1))
    maintenance = Maintenance(backend, MaintenanceConfig(retention=7 * DAY))
    backend.clock_offset = 6 * DAY
    await maintenance.prune()
    assert await backend.get(job.id) is not None
    backend.clock_offset = 8 * DAY
    await maintenance.prune()
    assert await backend.get(job.id) is None
    assert await backend.get(pending.id) is not None, "unfinished jobs are never pruned"


def test_jitter_stays_within_bounds() -> None:
    rng = random.Random(7)
    values = [jittered(10.0, 0.2, rng) for _ in range(1000)]
    assert min(values) >= 8.0 and max(values) <= 12.0
    assert max(values) - min(values) > 2.0, "jitter must actually spread the nodes out"
