"""The HTTP client without I/O: what to send, how to read the answer, and how ``wait`` proceeds.

``ConveyorClient`` and ``AsyncConveyorClient`` (``conveyor.client``) are thin transports over
this module, so they cannot drift apart: each method builds a ``Call`` here and hands the
response back to ``Call.read``, and ``wait`` is one generator (``wait_plan``) that yields
steps (fetch the status, open the event stream, read a line, pause, report an update) and
receives what the transport got. The same errors come out of both: ``ClientError`` for every
error answer and every failure to reach the service, ``WaitTimeout`` when ``wait`` gives up.
"""

from __future__ import annotations

import contextlib
import mimetypes
import time
from collections.abc import AsyncIterator, Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, Generic, TypeVar
from urllib.parse import quote

import httpx

from conveyor.api.schemas import BatchResult, JobStatus, WorkflowView

R = TypeVar("R")

DEFAULT_POLL = 1.0
"""Seconds between polls when the server sends no Retry-After."""
MAX_POLL = 10.0
MAX_STREAM_READ = 60.0
"""Longest silence on the event stream before it counts as broken (the server sends keepalives)."""
MIN_STREAM_READ = 1.0


# -- errors ---------------------------------------------------------------------------------------


class ClientError(Exception):
    """The job service answered with an error status (or could not be reached: status 0)."""

    def __init__(self, status_code: int, problem: dict[str, Any], retry_after: float | None = None) -> None:
        self.status_code = status_code
        self.problem = problem
        self.retry_after = retry_after
        title = problem.get("title") or "error"
        detail = problem.get("detail")
        super().__init__(f"{status_code} {title}" + (f": {detail}" if detail else ""))

    @property
    def errors(self) -> list[dict[str, str]]:
        """Field-level errors of a 422 (``[{"field": ..., "message": ...}]``)."""
        return list(self.problem.get("errors") or [])


class WaitTimeout(TimeoutError):
    """``wait`` gave up before the job reached a terminal status; ``last`` is what was seen."""

    def __init__(self, job_id: str, last: JobStatus | None) -> None:
        super().__init__(f"job {job_id} did not finish in time (last status: {last.status if last else 'unknown'})")
        self.last = last


def unreachable(exc: httpx.HTTPError) -> ClientError:
    """A request that got no usable answer (connection refused, reset, timed out, broken stream)."""
    title = "service unreachable" if isinstance(exc, httpx.TransportError) else "broken response"
    error = ClientError(0, {"title": title, "detail": str(exc) or type(exc).__name__})
    error.__cause__ = exc
    return error


def retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def check(response: httpx.Response) -> None:
    """Raise ClientError with the RFC 9457 problem body unless the answer is a success."""
    if response.is_success:
        return
    try:
        body = response.json()
        problem = body if isinstance(body, dict) else {"title": str(body)}
    except ValueError:
        problem = {"title": response.reason_phrase or "error", "detail": response.text[:500] or None}
    problem.setdefault("status", response.status_code)
    raise ClientError(response.status_code, problem, retry_after(response))


# -- requests -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Call(Generic[R]):
    """One request, described: the transport sends it and passes the response to ``read``."""

    method: str
    path: str
    read: Callable[[httpx.Response], R]
    json: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)


def default_headers(api_key: str | None) -> dict[str, str]:
    headers = {"Accept": "application/json", "User-Agent": "conveyor-client"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    return headers


def _job_path(job_id: str) -> str:
    return f"/v1/jobs/{quote(job_id, safe='')}"


def _status(response: httpx.Response) -> JobStatus:
    check(response)
    return JobStatus.model_validate(response.json())


def _tasks(response: httpx.Response) -> list[dict[str, Any]]:
    check(response)
    return list(response.json()["tasks"])


def submit(
    task: str,
    args: dict[str, Any] | None = None,
    *,
    queue: str | None = None,
    priority: int | None = None,
    delay: float | None = None,
    run_at: datetime | float | None = None,
    idempotency_key: str | None = None,
    depends_on: Sequence[str] = (),
    step: str | None = None,
    workflow_id: str | None = None,
    on_dependency_failure: str | None = None,
    quorum: int | None = None,
) -> Call[JobStatus]:
    """``POST /v1/jobs``; with an idempotency key a retried submit answers the same job."""
    body = submit_body(
        task,
        args,
        queue=queue,
        priority=priority,
        delay=delay,
        run_at=run_at,
        depends_on=depends_on,
        step=step,
        workflow_id=workflow_id,
        on_dependency_failure=on_dependency_failure,
        quorum=quorum,
    )
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    return Call("POST", "/v1/jobs", _status, json=body, headers=headers)


def submit_body(
    task: str,
    args: dict[str, Any] | None = None,
    *,
    queue: str | None = None,
    priority: int | None = None,
    delay: float | None = None,
    run_at: datetime | float | None = None,
    depends_on: Sequence[str] = (),
    step: str | None = None,
    workflow_id: str | None = None,
    on_dependency_failure: str | None = None,
    quorum: int | None = None,
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    """The JSON of one submit (``POST /v1/jobs``, or one item of a batch), without unset fields."""
    body: dict[str, Any] = {"task": task, "args": args or {}}
    if run_at is not None:
        when = datetime.fromtimestamp(run_at, UTC) if isinstance(run_at, int | float) else run_at
        body["run_at"] = when.isoformat()
    if depends_on:
        body["depends_on"] = list(depends_on)
    optional = {
        "queue": queue,
        "priority": priority,
        "delay": delay,
        "step": step,
        "workflow_id": workflow_id,
        "on_dependency_failure": on_dependency_failure,
        "quorum": quorum,
        "idempotency_key": idempotency_key,
    }
    body.update({k: str(v) if k == "on_dependency_failure" else v for k, v in optional.items() if v is not None})
    return body


def _batch(response: httpx.Response) -> BatchResult:
    check(response)
    return BatchResult.model_validate(response.json())


def _workflow(response: httpx.Response) -> WorkflowView:
    check(response)
    return WorkflowView.model_validate(response.json())


def submit_batch(
    items: Sequence[Mapping[str, Any]], *, workflow_id: str | None = None, idempotency_key: str | None = None
) -> Call[BatchResult]:
    """``POST /v1/jobs:batch``: every item (a ``submit_body``) stored in one transaction, or none."""
    body: dict[str, Any] = {"items": [dict(item) for item in items]}
    if workflow_id is not None:
        body["workflow_id"] = workflow_id
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    return Call("POST", "/v1/jobs:batch", _batch, json=body, headers=headers)


def _workflow_path(workflow_id: str) -> str:
    return f"/v1/workflows/{quote(workflow_id, safe='')}"


def workflow(workflow_id: str) -> Call[WorkflowView]:
    return Call("GET", _workflow_path(workflow_id), _workflow)


def cancel_workflow(workflow_id: str) -> Call[WorkflowView]:
    return Call("POST", _workflow_path(workflow_id) + ":cancel", _workflow)


@contextlib.contextmanager
def upload_body(source: str | Path | BinaryIO) -> Iterator[tuple[BinaryIO, str | None]]:
    """The stream to send for an upload, and the file name it suggests."""
    if isinstance(source, str | Path):
        path = Path(source)
        with path.open("rb") as handle:
            yield handle, path.name
    else:
        yield source, None


def upload_target(filename: str | None, content_type: str | None) -> tuple[str, dict[str, str]]:
    """Path and headers of ``POST /v1/uploads`` for a file of this name and type."""
    path = "/v1/uploads" + (f"?filename={quote(filename, safe='')}" if filename else "")
    ctype = content_type or (mimetypes.guess_type(filename)[0] if filename else None) or "application/octet-stream"
    return path, {"Content-Type": ctype}


async def async_chunks(body: BinaryIO, size: int = 1024 * 1024) -> AsyncIterator[bytes]:
    while chunk := body.read(size):
        yield chunk


def read_upload(response: httpx.Response) -> dict[str, Any]:
    check(response)
    return dict(response.json())


def get(job_id: str) -> Call[JobStatus]:
    return Call("GET", _job_path(job_id), _status)


def cancel(job_id: str) -> Call[JobStatus]:
    return Call("POST", _job_path(job_id) + ":cancel", _status)


def tasks() -> Call[list[dict[str, Any]]]:
    return Call("GET", "/v1/tasks", _tasks)


# -- wait: the steps, decided here, carried out by the transports ---------------------------------


@dataclass(frozen=True)
class Fetch:
    """Send ``call``; reply with the response."""

    call: Call[JobStatus]


@dataclass(frozen=True)
class Listen:
    """Open the job's event stream (closing one still open); reply with the response, body read if not 2xx."""

    path: str
    headers: dict[str, str]
    read_timeout: float


@dataclass(frozen=True)
class NextLine:
    """Reply with the next line of the open stream, or None when it ended."""


@dataclass(frozen=True)
class Pause:
    """Sleep this many seconds; reply None."""

    seconds: float


@dataclass(frozen=True)
class Notify:
    """Give ``status`` to the caller's ``on_update``; reply None."""

    status: JobStatus


Step = Fetch | Listen | NextLine | Pause | Notify
WaitPlan = Generator[Step, Any, JobStatus]
"""A transport sends the reply of each step; a failed request is thrown in as ClientError."""


class SSEParser:
    """Incremental text/event-stream parser: feed lines, get (id, event, data) when a block ends."""

    def __init__(self) -> None:
        self.id: str | None = None
        self.event = "message"
        self.data: list[str] = []

    def feed(self, line: str) -> tuple[str | None, str, str] | None:
        if line == "":
            if not self.data:
                self.event = "message"
                return None
            out = (self.id, self.event, "\n".join(self.data))
            self.event, self.data = "message", []
            return out
        if line.startswith(":"):
            return (None, "keepalive", "")
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "id":
            self.id = value
        elif name == "event":
            self.event = value
        elif name == "data":
            self.data.append(value)
        return None


def poll_delay(seconds: float | None) -> float:
    """The server's Retry-After, within reason; DEFAULT_POLL when it sent none."""
    return min(MAX_POLL, seconds if seconds is not None and seconds > 0 else DEFAULT_POLL)


def wait_plan(
    job_id: str, timeout: float | None = None, stream: bool = True, clock: Callable[[], float] = time.monotonic
) -> WaitPlan:
    """Follow a job to its terminal status; the status, or WaitTimeout after ``timeout`` seconds.

    Follows the event stream (re-reading the status on each event, reconnecting with
    Last-Event-ID when it ends early) and falls back to polling at the server's Retry-After
    when the stream cannot be used (a proxy, an old server, a broken connection). Each new
    status is reported once (``Notify``).
    """
    deadline = None if timeout is None else clock() + timeout
    last: JobStatus | None = None

    def remaining() -> float | None:
        return None if deadline is None else deadline - clock()

    def check_deadline() -> None:
        left = remaining()
        if left is not None and left <= 0:
            raise WaitTimeout(job_id, last)

    def fetch() -> Generator[Step, Any, tuple[JobStatus, float | None]]:
        nonlocal last
        call = get(job_id)
        response = yield Fetch(call)
        status = call.read(response)
        if last is None or last.model_dump() != status.model_dump():
            yield Notify(status)
        last = status
        return status, retry_after(response)

    status, _ = yield from fetch()
    last_event_id: str | None = None
    while not status.terminal:
        check_deadline()
        if stream:
            try:
                left = remaining()
                read = MAX_STREAM_READ if left is None else min(MAX_STREAM_READ, max(MIN_STREAM_READ, left))
                headers = {"Accept": "text/event-stream"}
                if last_event_id:
                    headers["Last-Event-ID"] = last_event_id
                check((yield Listen(_job_path(job_id) + "/events", headers, read)))
                parser = SSEParser()
                while (line := (yield NextLine())) is not None:
                    block = parser.feed(line)
                    if block is None:
                        continue
                    if block[1] == "keepalive":
                        check_deadline()
                        continue
                    last_event_id = block[0] or last_event_id
                    status, _ = yield from fetch()
                    if status.terminal:
                        return status
            except ClientError:
                stream = False  # cannot stream here: poll instead
            status, _ = yield from fetch()
            continue
        status, seconds = yield from fetch()
        if not status.terminal:
            pause = poll_delay(seconds)
            left = remaining()
            yield Pause(pause if left is None else min(pause, max(0.0, left)))
    return status
