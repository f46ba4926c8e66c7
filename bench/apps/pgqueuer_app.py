"""pgqueuer's benchmark app: the factory ``pgq run`` loads, with two async entrypoints (asyncpg driver)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from pgqueuer import PgQueuer
from pgqueuer.db import AsyncpgDriver
from pgqueuer.models import Job

from bench.apps import record


@asynccontextmanager
async def main() -> AsyncIterator[PgQueuer]:
    connection = await asyncpg.connect(os.environ["BENCH_URL"])
    pgq = PgQueuer(AsyncpgDriver(connection))

    @pgq.entrypoint("noop")
    async def noop(job: Job) -> None:
        record.done()

    @pgq.entrypoint("probe")
    async def probe(job: Job) -> None:
        record.pickup(float((job.payload or b"0").decode()))

    try:
        yield pgq
    finally:
        await connection.close()


if __name__ == "__main__":
    # What `pgq run bench.apps.pgqueuer_app:main --max-concurrent-tasks N` does; pgqueuer 1.6.0's
    # CLI crashes on start with typer 0.29 ('str' object has no attribute 'name' in --log-level).
    import asyncio
    import sys

    from pgqueuer.adapters.cli import supervisor

    limit = int(sys.argv[1])  # pgqueuer requires max_concurrent_tasks >= 2 * batch_size
    asyncio.run(supervisor.run(main, max_concurrent_tasks=limit, batch_size=max(1, limit // 2)))
