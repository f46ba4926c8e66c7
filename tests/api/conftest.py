"""Fixtures: a fresh store per test (or per module, for ``stack``) on every engine, and the real
server/worker processes on it.

``env`` and ``stack`` are parametrised over tests.engines.ENGINES (ids ``sqlite``, ``postgres``,
``redis``); ``sqlite_env`` is for the few tests that exercise a SQLite-only behaviour and say why.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.api.procs import Env, Server
from tests.engines import ENGINES, engine_url


@pytest.fixture(params=ENGINES, ids=list(ENGINES))
def env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Env]:
    with engine_url(request.param, tmp_path) as url:
        environment = Env(url, tmp_path)
        try:
            yield environment
        finally:
            environment.stop_all()


@pytest.fixture
def sqlite_env(tmp_path: Path) -> Iterator[Env]:
    """A SQLite store, for a test of SQLite-only behaviour (its docstring says which)."""
    with engine_url("sqlite", tmp_path) as url:
        environment = Env(url, tmp_path)
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


@pytest.fixture(scope="module", params=ENGINES, ids=list(ENGINES))
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("stack")
    with engine_url(request.param, tmp, private=True) as url:
        yield from _stack(Env(url, tmp))


def _stack(environment: Env) -> Iterator[Stack]:
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
