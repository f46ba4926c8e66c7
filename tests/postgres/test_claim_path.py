"""The claim path: an index that holds only queued jobs, and claimers that never collide.

History (finished jobs) must never be on the claim path, so claim cost stays flat as it grows:
the plan of the claim statement is checked with a large finished history in the table.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest

from conveyor.backend.postgres.backend import PostgresBackend
from conveyor.backend.protocol import ClaimRequest, CompleteRequest, EnqueueRequest
from conveyor.backend.sqlfile import load_queries
from tests.engines import engine_url

HISTORY = 50_000
SQL = load_queries("conveyor.backend.postgres")  # a private database: the default schema


@pytest.fixture
def url(tmp_path: Path) -> Iterator[str]:
    with engine_url("postgres", tmp_path, private=True) as u:
        yield u


@pytest.fixture
async def backend(url: str) -> AsyncIterator[PostgresBackend]:
    b = PostgresBackend(url + "?pool_size=4")
    await b.open()
    yield b
    await b.close()


def plan(url: str, name: str, params: dict[str, object]) -> str:
    with psycopg.connect(url) as conn:
        rows = conn.execute(f"EXPLAIN {SQL[name]}", params).fetchall()  # type: ignore[arg-type]
        conn.rollback()
    return "\n".join(r[0] for r in rows)


def add_history(url: str, n: int) -> None:
    with psycopg.connect(url) as conn:
        conn.execute(
            """
            INSERT INTO conveyor.jobs (id, task, queue, tenant, args, state, max_attempts, run_at,
                                       created_at, updated_at, finished_at)
            SELECT 'old-' || lpad(i::text, 8, '0'), 't', 'q', 'default', '{}',
                   (ARRAY['succeeded', 'failed', 'canceled'])[1 + mod(i, 3)], 3, i, i, i, i
            FROM generate_series(1, %s) AS i
            """,
            [n],
        )
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE conveyor.jobs")


async def test_claim_uses_the_queued_only_index_with_a_large_history(backend: PostgresBackend, url: str) -> None:
    add_history(url, HISTORY)
    await backend.enqueue_many([EnqueueRequest(task="t", args={}, queue="q") for _ in range(20)])
    text = plan(url, "claim_limited_candidates", {"off": 0.0, "queues": ["q"], "skip": [], "limit": 10})
    assert "jobs_claim" in text, text
    assert "Seq Scan on jobs" not in text, text
    # The index holds only queued jobs: none of the finished history is in it.
    with psycopg.connect(url) as conn:
        stats = conn.execute(
            "SELECT reltuples FROM pg_class WHERE relname = 'jobs_claim' AND relnamespace = 'conveyor'::regnamespace"
        ).fetchone()
    assert stats is not None and stats[0] <= 100, stats
    jobs = await backend.claim(ClaimRequest("w", ("q",), limit=10))
    assert len(jobs) == 10 and all(not j.id.startswith("old-") for j in jobs)


async def test_promotion_and_reaper_use_their_partial_indexes(backend: PostgresBackend, url: str) -> None:
    add_history(url, HISTORY)
    for name in ("promote_due", "expired_leases"):
        text = plan(url, name, {"off": 0.0, "limit": 1000})
        assert "Seq Scan on jobs" not in text, f"{name}:\n{text}"


async def test_parallel_claimers_never_share_a_job(url: str) -> None:
    """Eight engines (own pools) claim in batches concurrently: every job is handed out once."""
    producer = PostgresBackend(url)
    await producer.open()
    total = 600
    await producer.enqueue_many([EnqueueRequest(task="t", args={"i": i}, queue="q") for i in range(total)])
    claimers = [PostgresBackend(url + "?pool_size=2") for _ in range(8)]
    await asyncio.gather(*(c.open() for c in claimers))
    seen: list[str] = []

    async def drain(b: PostgresBackend, n: int) -> None:
        while True:
            jobs = await b.claim(ClaimRequest(f"w{n}", ("q",), limit=7, lease_seconds=60))
            if not jobs:
                return
            seen.extend(j.id for j in jobs)
            for job in jobs:
                assert job.lease_token is not None
                assert await b.complete(CompleteRequest(job.id, job.lease_token, None))

    try:
        await asyncio.gather(*(drain(c, n) for n, c in enumerate(claimers)))
    finally:
        await asyncio.gather(*(c.close() for c in claimers))
        await producer.close()
    assert len(seen) == total and len(set(seen)) == total
