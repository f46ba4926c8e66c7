"""Fixtures of the Redis engine tests: a fresh prefix on the shared server, or a private server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from conveyor.backend.redis.backend import RedisBackend
from tests.engines import engine_url, unavailable
from tests.redis.server import REDIS_SERVER, RedisServer


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    with engine_url("redis", tmp_path) as url:
        yield url


@pytest.fixture
async def backend(redis_url: str) -> AsyncIterator[RedisBackend]:
    b = RedisBackend(redis_url)
    await b.open()
    yield b
    await b.close()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of our own (AOF, fsync always) that the test may kill and restart."""
    if not Path(REDIS_SERVER).exists():
        unavailable("redis-server binary not found")
    server = RedisServer(tmp_path / "redis", "always")
    server.start()
    try:
        yield server
    finally:
        server.stop()
