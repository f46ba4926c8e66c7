"""Fixtures of the conformance suite: one fresh store per test, on every engine.

Every test takes ``backend`` (parametrised over tests.engines.ENGINES, ids ``sqlite``,
``postgres``, ``redis``) so ``pytest tests/conformance -k redis`` runs the whole suite on one
engine. ``open_backend()`` opens more independent instances (own connections) on the same
store, for concurrency tests. An engine whose module is not in the tree yet, or whose server is
down, is a visible skip locally and a failure in CI (see tests/engines.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from conveyor.backend import Backend, create_backend
from conveyor.backend.protocol import Capability, ClaimRequest, EnqueueRequest
from conveyor.types import Job
from tests.engines import ENGINES, engine_url

OpenBackend = Callable[[], Awaitable[Backend]]


def requires(backend: Backend, capability: Capability) -> None:
    """Skip a test of an optional feature the engine does not declare (a failure in CI).

    ``capability`` is the enum, so a misspelt name is an AttributeError at the call site,
    never a test that skips everywhere.
    """
    if not isinstance(capability, Capability):
        raise TypeError(f"requires() takes a Capability, got {capability!r}")
    if capability not in backend.capabilities:
        pytest.skip(f"engine does not declare capability {capability.value!r}")


@pytest.fixture(params=ENGINES, ids=list(ENGINES))
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def backend_url(engine: str, tmp_path: Path) -> Iterator[str]:
    """A URL to a fresh, empty store (sqlite file / PostgreSQL database / Redis prefix)."""
    with engine_url(engine, tmp_path) as url:
        yield url


@pytest.fixture
async def open_backend(backend_url: str) -> AsyncIterator[OpenBackend]:
    """Factory of extra opened instances on the same store; all closed after the test."""
    opened: list[Backend] = []

    async def factory() -> Backend:
        instance = create_backend(backend_url)
        await instance.open()
        opened.append(instance)
        return instance

    yield factory
    for instance in reversed(opened):
        await instance.close()


@pytest.fixture
async def backend(open_backend: OpenBackend) -> Backend:
    return await open_backend()


# -- small helpers shared by the test modules ---------------------------------------------


def req(task: str = "t", queue: str = "default", **kw: Any) -> EnqueueRequest:
    """An EnqueueRequest with test defaults: args ``{}`` unless given."""
    args = kw.pop("args", {})
    return EnqueueRequest(task=task, args=args, queue=queue, **kw)


async def enqueue(backend: Backend, task: str = "t", queue: str = "default", **kw: Any) -> Job:
    return (await backend.enqueue(req(task, queue, **kw))).job


async def claim(
    backend: Backend, queue: str = "default", limit: int = 1, lease: float = 30.0, worker: str = "w1"
) -> list[Job]:
    return await backend.claim(ClaimRequest(worker_id=worker, queues=(queue,), limit=limit, lease_seconds=lease))


async def claim_one(backend: Backend, queue: str = "default", lease: float = 30.0, worker: str = "w1") -> Job:
    jobs = await claim(backend, queue, 1, lease, worker)
    assert len(jobs) == 1, f"expected one claimable job in {queue!r}, got {len(jobs)}"
    return jobs[0]


async def fetch(backend: Backend, job_id: str) -> Job:
    """The job as the engine has it now; fails the test if it vanished."""
    job = await backend.get(job_id)
    assert job is not None, f"job {job_id} vanished"
    return job


async def state_of(backend: Backend, job_id: str) -> str:
    return (await fetch(backend, job_id)).state.value
