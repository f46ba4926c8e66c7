"""Fixtures: a fresh SQLite engine per test and the real server/worker processes on it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.api.procs import Env, Server


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    environment = Env(f"sqlite:///{tmp_path / 'conveyor.db'}", tmp_path)
    try:
        yield environment
    finally:
        environment.stop_all()


@dataclass
class Keys:
    admin: str
    tenant_a: str
    tenant_b: str
    read_only: str


@dataclass
class Stack:
    """A server with auth and one worker node it started itself, plus keys of several tenants and scopes."""

    env: Env
    server: Server
    keys: Keys


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("stack")
    environment = Env(f"sqlite:///{tmp / 'conveyor.db'}", tmp)
    try:
        keys = Keys(
            admin=environment.create_key("admin", tenant="ops"),
            tenant_a=environment.create_key("submit", "read", tenant="a"),
            tenant_b=environment.create_key("submit", "read", tenant="b"),
            read_only=environment.create_key("read", tenant="a"),
        )
        # the worker node is started by `conveyor serve --workers`, as `make run` does
        server = environment.serve("--workers", "1", "--concurrency", "2")
        yield Stack(environment, server, keys)
    finally:
        environment.stop_all()
