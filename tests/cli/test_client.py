"""The HTTP clients: one core (``conveyor.client_core``), two thin transports, same behaviour.

The wait plan is checked without any I/O by feeding it answers; then both clients run the same
scenarios against a real ``conveyor serve --workers 1`` (the examples app on SQLite).
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import socket
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from conveyor import AsyncConveyorClient, ClientError, ConveyorClient, JobStatus, WaitTimeout
from conveyor import client_core as core
from tests.cli.conftest import Cli

pytestmark = pytest.mark.xdist_group("cli-client")  # one job service for the whole module


# -- the two clients have the same surface -------------------------------------------------------


def _public(cls: type) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(fn)
        for name, fn in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_") and name not in ("close", "aclose")
    }


def test_sync_and_async_clients_have_the_same_methods_and_signatures() -> None:
    sync, coro = _public(ConveyorClient), _public(AsyncConveyorClient)
    workflows = {"submit_batch", "workflow", "cancel_workflow", "wait_workflow"}
    assert sync.keys() == coro.keys() == {"submit", "get", "cancel", "tasks", "wait", "upload", *workflows}
    for name in sync:
        assert str(sync[name]) == str(coro[name]), name
        assert inspect.iscoroutinefunction(getattr(AsyncConveyorClient, name)), name


# -- the wait plan, without I/O ------------------------------------------------------------------


def _answer(code: int, body: Any = None, **headers: str) -> httpx.Response:
    return httpx.Response(code, json=body, headers=headers, request=httpx.Request("GET", "http://svc/"))


def _status(state: str, **extra: Any) -> dict[str, Any]:
    status = {"queued": "notStarted", "running": "running", "succeeded": "succeeded"}[state]
    return {"id": "j1", "task": "t", "queue": "q", "status": status, "state": state, **extra}


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _expect(plan: core.WaitPlan, reply: Any, kind: type) -> Any:
    step = plan.send(reply)
    assert isinstance(step, kind), step
    return step


def test_wait_plan_follows_the_stream_and_reconnects_after_the_last_event() -> None:
    plan = core.wait_plan("j1", timeout=None, stream=True)
    assert isinstance(next(plan), core.Fetch)
    assert _expect(plan, _answer(200, _status("queued")), core.Notify).status.state == "queued"
    listen = _expect(plan, None, core.Listen)
    assert listen.path == "/v1/jobs/j1/events" and "Last-Event-ID" not in listen.headers
    _expect(plan, _answer(200), core.NextLine)
    for line in ("retry: 1000", "", "id: 3", "event: state", "data: {}"):
        _expect(plan, line, core.NextLine)
    _expect(plan, "", core.Fetch)  # an event: read the status again
    assert _expect(plan, _answer(200, _status("running")), core.Notify).status.state == "running"
    _expect(plan, None, core.NextLine)
    _expect(plan, ": keepalive", core.NextLine)
    _expect(plan, None, core.Fetch)  # the stream ended early: read, then reconnect where it stopped
    listen = _expect(plan, _answer(200, _status("running")), core.Listen)
    assert listen.headers["Last-Event-ID"] == "3"
    _expect(plan, _answer(200), core.NextLine)
    for line in ("id: 4", "event: state", "data: {}"):
        _expect(plan, line, core.NextLine)
    _expect(plan, "", core.Fetch)
    assert _expect(plan, _answer(200, _status("succeeded", result=7)), core.Notify).status.result == 7
    with pytest.raises(StopIteration) as done:
        plan.send(None)
    assert done.value.value.status == "succeeded"


def test_wait_plan_polls_at_retry_after_when_the_stream_is_refused() -> None:
    plan = core.wait_plan("j1", timeout=None, stream=True)
    next(plan)
    _expect(plan, _answer(200, _status("queued")), core.Notify)
    _expect(plan, None, core.Listen)
    _expect(plan, _answer(404, {"title": "Not Found"}), core.Fetch)  # no stream here: poll instead
    _expect(plan, _answer(200, _status("queued")), core.Fetch)  # unchanged: no update reported
    pause = _expect(plan, _answer(200, _status("queued"), **{"Retry-After": "3"}), core.Pause)
    assert pause.seconds == 3.0
    _expect(plan, None, core.Fetch)
    _expect(plan, _answer(200, _status("succeeded")), core.Notify)
    with pytest.raises(StopIteration):
        plan.send(None)


def test_wait_plan_times_out_with_the_last_status_seen() -> None:
    clock = Clock()
    plan = core.wait_plan("j1", timeout=5.0, stream=False, clock=clock)
    next(plan)
    _expect(plan, _answer(200, _status("running")), core.Notify)
    _expect(plan, None, core.Fetch)
    pause = _expect(plan, _answer(200, _status("running"), **{"Retry-After": "30"}), core.Pause)
    assert pause.seconds == 5.0  # never sleeps past the deadline
    clock.now += 5.0
    with pytest.raises(WaitTimeout) as timeout:
        plan.send(None)  # woke at the deadline: give up without another request
    assert timeout.value.last is not None and timeout.value.last.state == "running"


def test_wait_plan_raises_the_problem_of_an_error_answer() -> None:
    plan = core.wait_plan("j1", stream=False)
    next(plan)
    with pytest.raises(ClientError) as error:
        plan.send(_answer(404, {"title": "Not Found", "detail": "no job j1"}))
    assert error.value.status_code == 404 and error.value.problem["detail"] == "no job j1"


# -- both clients against a real job service ------------------------------------------------------


class Client:
    """One interface over both clients: ``client("get", job_id)``."""

    def __init__(self, base_url: str, kind: str) -> None:
        self.kind = kind
        self.runner = asyncio.Runner() if kind == "async" else None
        self.sync = ConveyorClient(base_url) if kind == "sync" else None
        self.coro = AsyncConveyorClient(base_url) if kind == "async" else None

    def __call__(self, method: str, *args: Any, **kwargs: Any) -> Any:
        if self.sync is not None:
            return getattr(self.sync, method)(*args, **kwargs)
        assert self.runner is not None
        return self.runner.run(getattr(self.coro, method)(*args, **kwargs))

    def close(self) -> None:
        if self.sync is not None:
            self.sync.close()
        if self.runner is not None and self.coro is not None:
            self.runner.run(self.coro.aclose())
            self.runner.close()


@pytest.fixture(params=["sync", "async"])
def client(request: pytest.FixtureRequest, server: tuple[Cli, str]) -> Iterator[Client]:
    runner = Client(server[1], str(request.param))
    yield runner
    runner.close()


def test_submit_and_wait_on_the_stream_reports_each_update(client: Client) -> None:
    updates: list[JobStatus] = []
    job = client("submit", "countdown", {"seconds": 0.6, "steps": 3}, idempotency_key=f"count-{client.kind}")
    assert job.task == "countdown" and not job.terminal
    final = client("wait", job.id, timeout=60, on_update=updates.append)
    assert final.status == "succeeded" and final.result is not None
    assert updates[-1] == final
    assert len(updates) >= 2 and updates[0].status != "succeeded"
    assert all(a != b for a, b in itertools.pairwise(updates)), "each update is reported once"
    again = client("submit", "countdown", {"seconds": 0.6, "steps": 3}, idempotency_key=f"count-{client.kind}")
    assert again.id == job.id


def test_wait_by_polling(client: Client) -> None:
    job = client("submit", "flaky", {"fail_times": 0}, delay=0.2)
    assert job.state == "scheduled"
    final = client("wait", job.id, timeout=60, stream=False)
    assert final.status == "succeeded" and final.attempts == 1


def test_get_cancel_and_tasks(client: Client) -> None:
    job = client("submit", "countdown", {"seconds": 30, "steps": 30}, delay=60)
    assert client("get", job.id).id == job.id
    canceled = client("cancel", job.id)
    assert canceled.status == "canceled" and client("get", job.id).status == "canceled"
    names = {t["name"] for t in client("tasks")}
    assert {"report", "countdown", "flaky", "import_contacts"} <= names


def test_wait_timeout_carries_the_last_status(client: Client) -> None:
    job = client("submit", "countdown", {"seconds": 30, "steps": 30}, delay=60)
    try:
        with pytest.raises(WaitTimeout) as timeout:
            client("wait", job.id, timeout=0.5)
        assert timeout.value.last is not None and timeout.value.last.id == job.id
    finally:
        client("cancel", job.id)


def test_error_answers_raise_client_error_with_the_problem(client: Client) -> None:
    with pytest.raises(ClientError) as missing:
        client("get", "no-such-job")
    assert missing.value.status_code == 404
    with pytest.raises(ClientError) as invalid:
        client("submit", "report", {"months": 99})
    assert invalid.value.status_code == 422
    assert sorted(e["field"] for e in invalid.value.errors) == ["args.months", "args.title"]
    with pytest.raises(ClientError) as unknown:
        client("submit", "no_such_task")
    assert unknown.value.status_code == 404


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("kind", ["sync", "async"])
@pytest.mark.parametrize("call", [lambda c: c("get", "x"), lambda c: c("wait", "x", timeout=5)], ids=["get", "wait"])
def test_an_unreachable_service_is_status_0(kind: str, call: Callable[[Client], Any]) -> None:
    client = Client(f"http://127.0.0.1:{_closed_port()}", kind)
    try:
        with pytest.raises(ClientError) as error:
            call(client)
        assert error.value.status_code == 0 and error.value.problem["title"] == "service unreachable"
    finally:
        client.close()
