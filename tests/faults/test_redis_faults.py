"""Redis faults with real processes and real signals, on a private redis-server per test.

* AOF + appendfsync always: SIGKILL Redis under load (producers + worker nodes), restart it on
  the same dir: no acknowledged job is lost and nothing stays running past its lease.
* Every persistence setting: SIGKILL Redis while producers enqueue, count acknowledged jobs
  missing after the restart. Asserted to be zero only for ``always``; the other numbers are
  printed for docs/operations-redis.md.
* SIGKILL worker nodes under load on Redis: every job ends in its right state.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor.backend.protocol import EnqueueRequest, JobFilter
from conveyor.backend.redis.backend import RedisBackend
from conveyor.errors import BackendUnavailable
from conveyor.types import JobState
from tests.engines import unavailable
from tests.faults.helpers import Cluster, wait_until
from tests.redis.server import REDIS_SERVER, RedisServer

pytestmark = pytest.mark.faults


def private_server(tmp_path: Path, persistence: str) -> RedisServer:
    if not Path(REDIS_SERVER).exists():
        unavailable("redis-server binary not found")
    server = RedisServer(tmp_path / f"redis-{persistence}", persistence)
    server.start()
    return server


@pytest.fixture
def aof_always(tmp_path: Path) -> Iterator[RedisServer]:
    server = private_server(tmp_path, "always")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_cluster(aof_always: RedisServer, tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(f"{aof_always.url}?prefix=faults-{uuid.uuid4().hex[:8]}", tmp_path)
    try:
        yield c
    finally:
        c.close()


class Producer(threading.Thread):
    """Enqueues ``basic.sleep`` jobs until stopped; remembers every enqueue Redis acknowledged."""

    def __init__(self, cluster: Cluster) -> None:
        super().__init__(daemon=True)
        self.cluster = cluster
        self.acked: list[str] = []
        self.refused = 0
        self.stop = threading.Event()

    def run(self) -> None:
        task = self.cluster.app.get_task("basic.sleep")
        while not self.stop.is_set():
            try:
                self.acked.append(task.enqueue(seconds=0.02).id)
            except BackendUnavailable:
                self.refused += 1
                time.sleep(0.02)


def stuck_running(cluster: Cluster) -> list[str]:
    """Running jobs whose lease is already over (by the engine clock)."""

    async def scan(b: object) -> list[str]:
        now = await b.now()  # type: ignore[attr-defined]
        page = await b.list_jobs(JobFilter(states=(JobState.RUNNING,), limit=10_000))  # type: ignore[attr-defined]
        return [j.id for j in page.jobs if j.lease_expires_at is not None and j.lease_expires_at < now - 0.5]

    return cluster.app.run_sync(scan)


def test_aof_always_sigkill_redis_under_load_loses_no_acknowledged_job(
    redis_cluster: Cluster, aof_always: RedisServer
) -> None:
    nodes = [redis_cluster.node(concurrency=4, lease=2.0, heartbeat=0.5) for _ in range(2)]
    for node in nodes:
        node.wait_for_log(r"executor\.started")
    producer = Producer(redis_cluster)
    producer.start()
    try:
        for _ in range(2):
            before = len(producer.acked)
            wait_until(lambda b=before: len(producer.acked) >= b + 150, message="load before the crash")
            wait_until(lambda: redis_cluster.app.list_jobs(states=[JobState.RUNNING]).jobs, message="jobs running")
            aof_always.kill()
            time.sleep(0.5)  # Redis stays down a little while producers and workers keep calling
            aof_always.start()
        after = len(producer.acked)
        wait_until(lambda: len(producer.acked) >= after + 150, message="load after the restart")
    finally:
        producer.stop.set()
        producer.join(timeout=60)

    acked = producer.acked
    jobs = redis_cluster.wait_all(acked, timeout=240)
    states = {j.state for j in jobs}
    print(f"\nAOF always: {len(acked)} acknowledged, {producer.refused} refused while down, states {states}")
    assert len(jobs) == len(acked) == len(set(acked))
    assert states == {JobState.SUCCEEDED}
    assert stuck_running(redis_cluster) == []
    assert all(n.running for n in nodes), "worker nodes must survive a Redis restart"


async def _measure_loss(server: RedisServer, producers: int, seconds: float) -> tuple[int, int, float]:
    """Enqueue flat out from ``producers`` tasks, SIGKILL Redis after ``seconds``, restart it.

    Returns (acknowledged, acknowledged but missing after the restart, enqueues per second).
    """
    url = f"{server.url}?prefix=loss"
    backend = RedisBackend(url)
    await backend.open()
    acked: list[str] = []
    killed = asyncio.Event()

    async def produce() -> None:
        while not killed.is_set():
            try:
                result = await backend.enqueue(EnqueueRequest(task="t", args={"pad": "x" * 200}, queue="q"))
            except BackendUnavailable:
                return
            acked.append(result.job.id)

    tasks = [asyncio.create_task(produce()) for _ in range(producers)]
    started = time.monotonic()
    await asyncio.sleep(seconds)
    rate = len(acked) / (time.monotonic() - started)
    server.kill()
    killed.set()
    await asyncio.gather(*tasks)
    await backend.close()
    server.start()
    check = RedisBackend(url)
    await check.open()
    missing = 0
    for job_id in acked:
        if await check.get(job_id) is None:
            missing += 1
    await check.close()
    return len(acked), missing, rate


@pytest.mark.slow
@pytest.mark.parametrize("persistence", ["none", "rdb", "everysec", "always"])
def test_what_a_redis_crash_loses_per_persistence_setting(tmp_path: Path, persistence: str) -> None:
    server = private_server(tmp_path, persistence)
    try:
        acked, missing, rate = asyncio.run(_measure_loss(server, producers=8, seconds=3.0))
    finally:
        server.stop()
    print(f"\n{persistence}: {acked} acknowledged enqueues ({rate:.0f}/s), {missing} lost on SIGKILL + restart")
    assert acked > 0
    if persistence == "always":
        assert missing == 0


def test_sigkill_worker_nodes_on_redis_every_job_ends_in_its_right_state(redis_cluster: Cluster) -> None:
    app = redis_cluster.app
    build = app.build_request
    expect: dict[str, JobState] = {}
    requests = [build("basic.sleep", {"seconds": 0.05}) for _ in range(200)]
    requests += [build("basic.flaky", {"fail_times": 1}) for _ in range(20)]
    requests += [build("basic.fatal", {"message": "needs a human"}) for _ in range(10)]
    requests += [build("basic.poison", {"how": "sigkill"}) for _ in range(3)]
    results = app.run_sync(lambda b: b.enqueue_many(requests))
    for request, result in zip(requests, results, strict=True):
        good = request.task in ("basic.sleep", "basic.flaky")
        expect[result.job.id] = JobState.SUCCEEDED if good else JobState.FAILED

    nodes = [redis_cluster.node(concurrency=3, lease=1.0) for _ in range(2)]
    kills = 0
    for round_ in range(3):
        victim = nodes[round_ % 2]

        def busy(v=victim) -> bool:  # type: ignore[no-untyped-def]
            page = app.list_jobs(states=[JobState.RUNNING], limit=1000)
            return any(j.worker_id == v.id for j in page.jobs)

        if not wait_until(lambda: busy() or all(app.get(j).terminal for j in list(expect)[:200])):  # type: ignore[union-attr]
            break
        victim.kill()
        kills += 1
        nodes[round_ % 2] = redis_cluster.node(concurrency=3, lease=1.0)

    jobs = redis_cluster.wait_all(list(expect), timeout=240)
    wrong = [(j.id, j.task, j.state, expect[j.id]) for j in jobs if j.state is not expect[j.id]]
    assert kills >= 2
    assert wrong == []
    assert stuck_running(redis_cluster) == []
