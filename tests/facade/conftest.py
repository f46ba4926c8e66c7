"""Fixtures of the facade suite: an app on a fresh store of every engine, driven sync or async.

``facade`` runs each test twice per engine: once through the sync methods (``app.get``), once
through their ``*_async`` twins on one event loop of the test's own (``await app.get_async``),
so both forms are proven on SQLite, PostgreSQL and Redis.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conveyor import Conveyor, QueueConfig
from tests.engines import ENGINES, engine_url

MODES = ("sync", "async")


def build_app(url: str, results: Path) -> Conveyor:
    app = Conveyor(url, result_store=str(results), queues=[QueueConfig("mail")])

    @app.task(name="add")
    def add(a: int, b: int = 0) -> int:
        return a + b

    @app.task(name="chunk")
    def chunk(items: list[int]) -> int:
        return sum(items)

    @app.task(name="send", queue="mail")
    def send(to: str) -> None:
        return None

    return app


class Facade:
    """``facade("get", job_id)``: the sync method, or its async twin run on the test's loop."""

    def __init__(self, app: Conveyor, mode: str) -> None:
        self.app = app
        self.mode = mode
        self._runner = asyncio.Runner() if mode == "async" else None

    def __call__(self, operation: str, *args: Any, **kwargs: Any) -> Any:
        return self.on(self.app, operation, *args, **kwargs)

    def on(self, owner: object, operation: str, *args: Any, **kwargs: Any) -> Any:
        """``owner.operation(...)`` or ``await owner.operation_async(...)``, by the mode."""
        if self._runner is None:
            return getattr(owner, operation)(*args, **kwargs)
        return self._runner.run(getattr(owner, f"{operation}_async")(*args, **kwargs))

    def close(self) -> None:
        if self._runner is not None:
            self._runner.run(self.app.aclose())
            self._runner.close()
        self.app.close()


@pytest.fixture(params=ENGINES, ids=list(ENGINES))
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store_url(engine: str, tmp_path: Path) -> Iterator[str]:
    with engine_url(engine, tmp_path) as url:
        yield url


@pytest.fixture(params=MODES)
def facade(request: pytest.FixtureRequest, store_url: str, tmp_path: Path) -> Iterator[Facade]:
    runner = Facade(build_app(store_url, tmp_path / "results"), str(request.param))
    try:
        yield runner
    finally:
        runner.close()
