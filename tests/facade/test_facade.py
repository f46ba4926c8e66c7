"""The Conveyor facade on every engine, through the sync methods and their async twins.

Everything the CLI does goes through these methods, so each one is exercised here on real
SQLite, PostgreSQL and Redis stores. Setup the facade cannot do (put a job in ``failed``)
uses the engine directly, like tests/cli does.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

import conveyor
from conveyor import (
    CallOptions,
    ConfigError,
    Conveyor,
    EnqueueResult,
    InvalidArguments,
    InvalidTransition,
    JobContext,
    JobNotFound,
    JobPage,
    JobState,
    LeaseLost,
    QueueStats,
    UnknownTask,
)
from conveyor.backend.protocol import ClaimRequest
from tests.cli.conftest import make_failed
from tests.engines import engine_url
from tests.facade.conftest import Facade, build_app

TWINS = (
    "submit",
    "enqueue",
    "get",
    "list_jobs",
    "cancel",
    "redrive",
    "queue_stats",
    "queue_position",
    "events",
    "pause_queue",
    "resume_queue",
    "migrate",
)


def test_every_operation_has_a_sync_twin_with_the_same_signature() -> None:
    declared = {name.removesuffix("_async") for name in dir(Conveyor) if name.endswith("_async")}
    assert declared - {"enqueue", "submit"} >= set(TWINS) - {"enqueue", "submit"}
    for name in declared:
        sync, coro = getattr(Conveyor, name), getattr(Conveyor, f"{name}_async")
        assert inspect.iscoroutinefunction(coro), name
        assert not inspect.iscoroutinefunction(sync), name
        assert inspect.signature(sync) == inspect.signature(coro), name
        assert sync.__doc__ == coro.__doc__ and sync.__name__ == name


def test_public_names_import_from_the_package_without_the_web_stack() -> None:
    import subprocess
    import sys

    code = (
        "import sys, conveyor\n"
        "heavy = {'fastapi', 'starlette', 'uvicorn', 'httpx'} & {m.split('.')[0] for m in sys.modules}\n"
        "assert not heavy, heavy\n"
        "missing = [n for n in conveyor.__all__ if getattr(conveyor, n, None) is None]\n"
        "assert not missing, missing\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    assert sorted(conveyor.__all__) == sorted(set(conveyor.__all__))


def test_submit_enqueue_and_get(facade: Facade) -> None:
    first = facade("submit", "add", {"a": 1, "b": 2}, CallOptions(idempotency_key="k1"))
    assert isinstance(first, EnqueueResult) and first.created
    assert first.job.state is JobState.QUEUED and first.job.args == {"a": 1, "b": 2}
    replay = facade("submit", "add", {"a": 1, "b": 2}, CallOptions(idempotency_key="k1"))
    assert not replay.created and replay.job.id == first.job.id

    job = facade("enqueue", facade.app.tasks["send"], {"to": "ada@example.com"})
    assert job.queue == "mail" and job.task == "send"
    assert facade("get", job.id) == job
    assert facade("get", "no-such-job") is None
    assert facade("get", job.id, "another-tenant") is None

    with pytest.raises(InvalidArguments):
        facade("enqueue", "add", {"a": "not a number"})
    with pytest.raises(UnknownTask):
        facade("enqueue", "nope", {})


def test_list_jobs_filters_and_pages(facade: Facade) -> None:
    ids = [facade("enqueue", "add", {"a": n}).id for n in range(3)]
    mail = facade("enqueue", "send", {"to": "x@example.com"})
    everything = facade("list_jobs")
    assert isinstance(everything, JobPage)
    assert [j.id for j in everything.jobs] == [mail.id, *ids[::-1]]  # newest first
    assert [j.id for j in facade("list_jobs", queue="mail").jobs] == [mail.id]
    assert [j.id for j in facade("list_jobs", task="add", limit=2).jobs] == ids[::-1][:2]
    page = facade("list_jobs", task="add", limit=2)
    assert page.next_cursor is not None
    rest = facade("list_jobs", task="add", limit=2, cursor=page.next_cursor)
    assert [j.id for j in rest.jobs] == [ids[0]] and rest.next_cursor is None
    assert facade("list_jobs", states=["failed"]).jobs == []
    assert len(facade("list_jobs", states=[JobState.QUEUED]).jobs) == 4


def test_cancel(facade: Facade) -> None:
    job = facade("enqueue", "add", {"a": 1})
    canceled = facade("cancel", job.id, reason="not needed")
    assert canceled.id == job.id and canceled.state is JobState.CANCELED
    assert facade("get", job.id).state is JobState.CANCELED
    with pytest.raises(InvalidTransition):
        facade("cancel", job.id)
    with pytest.raises(JobNotFound):
        facade("cancel", "no-such-job")


def test_redrive_by_id_and_by_queue(facade: Facade) -> None:
    one = make_failed(facade.app, "mail", task="send")
    two = make_failed(facade.app, "mail", task="send")
    assert facade("get", one.id).state is JobState.FAILED
    assert facade("redrive", [one.id]) == 1
    again = facade("get", one.id)
    assert again.state is JobState.QUEUED and again.attempts == 0
    assert facade("redrive", queue="other") == 0
    assert facade("redrive", queue="mail", task="send") == 1
    assert facade("get", two.id).state is JobState.QUEUED


def test_queue_stats_and_position(facade: Facade) -> None:
    first = facade("enqueue", "send", {"to": "a@example.com"})
    second = facade("enqueue", "send", {"to": "b@example.com"})
    facade("enqueue", "add", {"a": 1})
    assert facade("queue_position", first.id) == 0
    assert facade("queue_position", second.id) == 1
    facade("cancel", second.id)
    assert facade("queue_position", second.id) is None
    stats = {q.queue: q for q in facade("queue_stats")}
    assert all(isinstance(q, QueueStats) for q in stats.values())
    assert stats["mail"].counts["queued"] == 1 and stats["mail"].counts["canceled"] == 1
    assert stats["default"].counts["queued"] == 1
    assert stats["mail"].pending == 1 and not stats["mail"].paused
    assert all(q.pending == 0 for q in facade("queue_stats", "another-tenant"))


def test_events_resume_after_a_seq(facade: Facade) -> None:
    job = facade("enqueue", "add", {"a": 1})
    facade("cancel", job.id)
    history = facade("events", job.id)
    assert [(e.type, e.state) for e in history] == [("enqueued", JobState.QUEUED), ("state", JobState.CANCELED)]
    assert all(e.job_id == job.id for e in history)
    assert history[0].seq < history[1].seq
    assert facade("events", job.id, history[0].seq) == history[1:]
    assert facade("events", job.id, 0, 1) == history[:1]
    assert facade("events", job.id, history[-1].seq) == []


def test_pause_and_resume_a_queue(facade: Facade) -> None:
    job = facade("enqueue", "send", {"to": "a@example.com"})
    facade("pause_queue", "mail")
    assert {q.queue: q.paused for q in facade("queue_stats")}["mail"] is True
    claim = ClaimRequest("facade-test", ("mail",), 5, 30.0)
    assert facade.app.run_sync(lambda b: b.claim(claim)) == []
    facade("resume_queue", "mail")
    assert {q.queue: q.paused for q in facade("queue_stats")}["mail"] is False
    assert [j.id for j in facade.app.run_sync(lambda b: b.claim(claim))] == [job.id]
    with pytest.raises(ConfigError):
        facade("pause_queue", " ")


def test_migrate_applies_once(engine: str, tmp_path: Path) -> None:
    with engine_url(engine, tmp_path, private=True) as url:  # a store nobody has migrated yet
        _migrate_twice(url, tmp_path)


def _migrate_twice(store_url: str, tmp_path: Path) -> None:
    for mode in ("sync", "async"):
        facade = Facade(build_app(store_url, tmp_path / "results"), mode)
        try:
            applied = facade("migrate")
            assert isinstance(applied, list)
            if mode == "sync":
                assert applied, "a fresh store has migrations to apply"
            else:
                assert applied == [], "the sync pass already applied every migration"
            assert facade("migrate") == []
        finally:
            facade.close()


def test_job_context_writes_are_fenced_in_both_forms(facade: Facade) -> None:
    job = facade("enqueue", "add", {"a": 1})
    claim = ClaimRequest("facade-test", ("default",), 1, 30.0)
    (claimed,) = facade.app.run_sync(lambda b: b.claim(claim))
    ctx = JobContext(facade.app, claimed)
    facade.on(ctx, "progress", 0.5, "half way")
    artifact = facade.on(ctx, "save_artifact", "out.txt", b"hello", "text/plain")
    assert artifact.name == "out.txt" and artifact.size == 5
    stored = facade("get", job.id)
    assert stored.progress == 0.5 and stored.progress_message == "half way"
    assert [a.name for a in stored.artifacts] == ["out.txt"]
    with pytest.raises(ValueError):
        facade.on(ctx, "progress", 1.5)

    facade("cancel", job.id)  # the lease is gone: every write is refused and says so
    with pytest.raises(LeaseLost):
        facade.on(ctx, "progress", 0.9)
    with pytest.raises(LeaseLost):
        facade.on(ctx, "save_artifact", "late.txt", b"late")
    assert [e.type for e in facade("events", job.id)].count("progress") == 1


def test_the_app_is_a_context_manager_that_closes_its_engine(store_url: str, tmp_path: Path) -> None:
    with build_app(store_url, tmp_path / "results") as app:
        job = app.enqueue("add", {"a": 1, "b": 2})
        assert app.get(job.id) is not None
        assert app._portal is not None
    assert app._portal is None  # the portal loop and its engine connection are gone


async def test_the_app_is_an_async_context_manager(store_url: str, tmp_path: Path) -> None:
    async with build_app(store_url, tmp_path / "results") as app:
        job = await app.enqueue_async("add", {"a": 1, "b": 2})
        assert (await app.get_async(job.id)) is not None
        assert app._backends or app._shared_backend is not None
    assert not app._backends and app._shared_backend is None
