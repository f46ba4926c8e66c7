"""Limits declared on a task (``@app.task(concurrency=..., rate_limit=..., unique_key=...)``)
reach every job of it, on every engine; a bad declaration is refused where it is written."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor import Conveyor
from conveyor.errors import ConfigError
from conveyor.limits import parse_rate
from conveyor.task import CallOptions
from tests.engines import ENGINES, engine_url


@pytest.fixture(params=ENGINES, ids=list(ENGINES))
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Conveyor]:
    with engine_url(str(request.param), tmp_path) as url:
        conveyor = Conveyor(url)

        @conveyor.task(
            name="report",
            concurrency=5,
            concurrency_key=lambda a: f"tenant:{a['tenant']}",
            rate_limit="100/m",
            rate_key="pdf-api",
            unique_key=lambda a: f"report:{a['tenant']}:{a['month']}",
        )
        def report(tenant: str, month: str) -> None:
            return None

        @conveyor.task(name="print", concurrency=1)
        def print_(doc: str) -> None:
            return None

        try:
            yield conveyor
        finally:
            conveyor.close()


def test_declared_limits_are_stored_on_each_job(app: Conveyor) -> None:
    job = app.enqueue("report", {"tenant": "acme", "month": "2026-11"})
    assert (job.concurrency_key, job.concurrency_limit) == ("tenant:acme", 5)
    assert (job.rate_key, job.rate_limit, job.rate_period) == ("pdf-api", 100, 60.0)
    assert job.unique_key == "report:acme:2026-11"
    plain = app.enqueue("print", {"doc": "a"})
    assert (plain.concurrency_key, plain.concurrency_limit, plain.rate_key) == ("print", 1, None)


def test_a_duplicate_of_a_unique_job_returns_the_first(app: Conveyor) -> None:
    first = app.submit("report", {"tenant": "acme", "month": "2026-11"})
    again = app.submit("report", {"tenant": "acme", "month": "2026-11"})
    other = app.submit("report", {"tenant": "acme", "month": "2026-12"})
    assert first.created and not again.created and again.job.id == first.job.id
    assert other.created
    override = app.submit("print", {"doc": "b"}, CallOptions(unique_key="doc-b"))
    assert override.job.unique_key == "doc-b"
    assert app.submit("print", {"doc": "c"}, CallOptions(unique_key="doc-b")).job.id == override.job.id


def test_a_key_function_must_return_a_string(tmp_path: Path) -> None:
    app = Conveyor(f"sqlite:///{tmp_path}/x.db")

    @app.task(name="bad", concurrency=2, concurrency_key=lambda a: 7)  # type: ignore[arg-type,return-value]
    def bad() -> None:
        return None

    with pytest.raises(ConfigError, match="must return a str"):
        app.build_request("bad", {})


@pytest.mark.parametrize(
    "options",
    [
        {"concurrency": 0},
        {"concurrency_key": "k"},
        {"rate_limit": "many/m"},
        {"rate_limit": "0/m"},
        {"rate_key": "k"},
    ],
)
def test_bad_declarations_are_refused(options: dict[str, object], tmp_path: Path) -> None:
    app = Conveyor(f"sqlite:///{tmp_path}/x.db")
    with pytest.raises(ConfigError):

        @app.task(name="t", **options)  # type: ignore[arg-type]
        def t() -> None:
            return None


@pytest.mark.parametrize(
    ("text", "expected"),
    [("100/m", (100, 60.0)), ("5/10s", (5, 10.0)), ("1000/hour", (1000, 3600.0)), ("3/2min", (3, 120.0))],
)
def test_rate_texts(text: str, expected: tuple[int, float]) -> None:
    assert parse_rate(text) == expected
    assert parse_rate(expected) == expected


def test_queue_wide_limits_become_the_jobs_keys(tmp_path: Path) -> None:
    from conveyor import QueueConfig

    app = Conveyor(
        f"sqlite:///{tmp_path}/q.db",
        queues=[QueueConfig("exports", concurrency=3, rate_limit="10/s")],
    )

    @app.task(name="export", queue="exports")
    def export(n: int) -> None:
        return None

    @app.task(name="limited", concurrency=1)
    def limited_task() -> None:
        return None

    request = app.build_request("export", {"n": 1})
    assert (request.concurrency_key, request.concurrency_limit) == ("queue:exports", 3)
    assert (request.rate_key, request.rate_limit, request.rate_period) == ("queue:exports", 10, 1.0)
    with pytest.raises(ConfigError, match="own concurrency limit"):
        app.build_request("limited", {}, CallOptions(queue="exports"))
    with pytest.raises(ConfigError, match="own concurrency limit"):

        @app.task(name="clash", queue="exports", concurrency=2)
        def clash() -> None:
            return None

    with pytest.raises(ConfigError, match="rate limit"):
        Conveyor(f"sqlite:///{tmp_path}/r.db", queues=[QueueConfig("x", rate_limit="lots")])
    with pytest.raises(ConfigError, match="concurrency"):
        QueueConfig("x", concurrency=0)
    app.close()
