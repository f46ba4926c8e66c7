"""HTTP client for the Conveyor job service, sync and async, on httpx.

``ConveyorClient`` and ``AsyncConveyorClient`` have the same methods: ``submit`` (with an
optional idempotency key), ``get``, ``wait`` (streams the job's Server-Sent Events and falls
back to polling that honours ``Retry-After``), ``cancel`` and ``tasks``. Every non-2xx answer
raises ``ClientError`` carrying the status code and the RFC 9457 problem body.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime
from typing import Any

import httpx

from conveyor.api.schemas import JobStatus

__all__ = ["AsyncConveyorClient", "ClientError", "ConveyorClient", "JobStatus", "WaitTimeout"]

UpdateCallback = Callable[[JobStatus], Any]
DEFAULT_POLL = 1.0
MAX_POLL = 10.0


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


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _raise_for(response: httpx.Response) -> None:
    if response.is_success:
        return
    try:
        body = response.json()
        problem = body if isinstance(body, dict) else {"title": str(body)}
    except ValueError:
        problem = {"title": response.reason_phrase or "error", "detail": response.text[:500] or None}
    problem.setdefault("status", response.status_code)
    raise ClientError(response.status_code, problem, _retry_after(response))


def _submit_body(
    task: str,
    args: dict[str, Any] | None,
    queue: str | None,
    priority: int | None,
    delay: float | None,
    run_at: datetime | float | None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"task": task, "args": args or {}}
    if queue is not None:
        body["queue"] = queue
    if priority is not None:
        body["priority"] = priority
    if delay is not None:
        body["delay"] = delay
    if run_at is not None:
        if isinstance(run_at, int | float):
            from datetime import UTC

            run_at = datetime.fromtimestamp(run_at, UTC)
        body["run_at"] = run_at.isoformat()
    return body


def _headers(api_key: str | None) -> dict[str, str]:
    headers = {"Accept": "application/json", "User-Agent": "conveyor-client"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    return headers


def _poll_delay(response: httpx.Response | None) -> float:
    value = _retry_after(response) if response is not None else None
    return min(MAX_POLL, value if value is not None and value > 0 else DEFAULT_POLL)


class _SSEParser:
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


def _changed(previous: JobStatus | None, current: JobStatus) -> bool:
    return previous is None or previous.model_dump() != current.model_dump()


class ConveyorClient:
    """Blocking client: ``ConveyorClient("http://127.0.0.1:8000", api_key=...)``."""

    def __init__(self, base_url: str, api_key: str | None = None, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, headers=_headers(api_key), timeout=timeout)

    def __enter__(self) -> ConveyorClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, url, **kwargs)
        except httpx.TransportError as exc:
            raise ClientError(0, {"title": "service unreachable", "detail": str(exc)}) from exc
        _raise_for(response)
        return response

    def submit(
        self,
        task: str,
        args: dict[str, Any] | None = None,
        *,
        queue: str | None = None,
        priority: int | None = None,
        delay: float | None = None,
        run_at: datetime | float | None = None,
        idempotency_key: str | None = None,
    ) -> JobStatus:
        """Submit a job; with ``idempotency_key`` a retried submit returns the same job."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        body = _submit_body(task, args, queue, priority, delay, run_at)
        return JobStatus.model_validate(self._request("POST", "/v1/jobs", json=body, headers=headers).json())

    def get(self, job_id: str) -> JobStatus:
        return JobStatus.model_validate(self._request("GET", f"/v1/jobs/{job_id}").json())

    def cancel(self, job_id: str) -> JobStatus:
        return JobStatus.model_validate(self._request("POST", f"/v1/jobs/{job_id}:cancel").json())

    def tasks(self) -> list[dict[str, Any]]:
        return list(self._request("GET", "/v1/tasks").json()["tasks"])

    def wait(
        self,
        job_id: str,
        *,
        timeout: float | None = None,
        on_update: UpdateCallback | None = None,
        stream: bool = True,
    ) -> JobStatus:
        """Block until the job is terminal; ``on_update`` gets each new status.

        Follows the event stream (reconnecting with Last-Event-ID) and falls back to polling
        at the server's ``Retry-After`` if streaming is not possible. Raises WaitTimeout.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        last: JobStatus | None = None

        def observe(status: JobStatus) -> JobStatus:
            nonlocal last
            if _changed(last, status) and on_update is not None:
                on_update(status)
            last = status
            return status

        status = observe(self.get(job_id))
        last_event_id: str | None = None
        while not status.terminal:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise WaitTimeout(job_id, last)
            if stream:
                try:
                    for event_id, event in self._events(job_id, last_event_id, remaining):
                        if event == "keepalive":
                            if deadline is not None and time.monotonic() >= deadline:
                                raise WaitTimeout(job_id, last)
                            continue
                        last_event_id = event_id or last_event_id
                        status = observe(self.get(job_id))
                        if status.terminal:
                            return status
                except (httpx.HTTPError, ClientError):
                    stream = False  # cannot stream here (proxy, old server): poll instead
                status = observe(self.get(job_id))
                continue
            response = self._http.get(f"/v1/jobs/{job_id}")
            _raise_for(response)
            status = observe(JobStatus.model_validate(response.json()))
            if not status.terminal:
                pause = _poll_delay(response)
                if deadline is not None:
                    pause = min(pause, max(0.0, deadline - time.monotonic()))
                time.sleep(pause)
        return status

    def _events(self, job_id: str, last_id: str | None, timeout: float | None) -> Iterator[tuple[str | None, str]]:
        headers = {"Accept": "text/event-stream"}
        if last_id:
            headers["Last-Event-ID"] = last_id
        read_timeout = 60.0 if timeout is None else min(60.0, max(1.0, timeout))
        with self._http.stream(
            "GET",
            f"/v1/jobs/{job_id}/events",
            headers=headers,
            timeout=httpx.Timeout(10.0, read=read_timeout),
        ) as response:
            if not response.is_success:
                response.read()
                _raise_for(response)
            parser = _SSEParser()
            for line in response.iter_lines():
                block = parser.feed(line)
                if block is not None:
                    yield block[0], block[1]


class AsyncConveyorClient:
    """The same client for asyncio code: ``await client.submit(...)``."""

    def __init__(self, base_url: str, api_key: str | None = None, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.AsyncClient(base_url=self.base_url, headers=_headers(api_key), timeout=timeout)

    async def __aenter__(self) -> AsyncConveyorClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            response = await self._http.request(method, url, **kwargs)
        except httpx.TransportError as exc:
            raise ClientError(0, {"title": "service unreachable", "detail": str(exc)}) from exc
        _raise_for(response)
        return response

    async def submit(
        self,
        task: str,
        args: dict[str, Any] | None = None,
        *,
        queue: str | None = None,
        priority: int | None = None,
        delay: float | None = None,
        run_at: datetime | float | None = None,
        idempotency_key: str | None = None,
    ) -> JobStatus:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        body = _submit_body(task, args, queue, priority, delay, run_at)
        response = await self._request("POST", "/v1/jobs", json=body, headers=headers)
        return JobStatus.model_validate(response.json())

    async def get(self, job_id: str) -> JobStatus:
        return JobStatus.model_validate((await self._request("GET", f"/v1/jobs/{job_id}")).json())

    async def cancel(self, job_id: str) -> JobStatus:
        return JobStatus.model_validate((await self._request("POST", f"/v1/jobs/{job_id}:cancel")).json())

    async def tasks(self) -> list[dict[str, Any]]:
        return list((await self._request("GET", "/v1/tasks")).json()["tasks"])

    async def wait(
        self,
        job_id: str,
        *,
        timeout: float | None = None,
        on_update: UpdateCallback | None = None,
        stream: bool = True,
    ) -> JobStatus:
        """Await the job's terminal status; see ``ConveyorClient.wait``."""
        last: JobStatus | None = None

        async def observe(status: JobStatus) -> JobStatus:
            nonlocal last
            if _changed(last, status) and on_update is not None:
                outcome = on_update(status)
                if asyncio.iscoroutine(outcome):
                    await outcome
            last = status
            return status

        async def run() -> JobStatus:
            nonlocal stream
            status = await observe(await self.get(job_id))
            last_event_id: str | None = None
            while not status.terminal:
                if stream:
                    try:
                        async for event_id, event in self._events(job_id, last_event_id):
                            if event == "keepalive":
                                continue
                            last_event_id = event_id or last_event_id
                            status = await observe(await self.get(job_id))
                            if status.terminal:
                                return status
                    except (httpx.HTTPError, ClientError):
                        stream = False
                    status = await observe(await self.get(job_id))
                    continue
                response = await self._http.get(f"/v1/jobs/{job_id}")
                _raise_for(response)
                status = await observe(JobStatus.model_validate(response.json()))
                if not status.terminal:
                    await asyncio.sleep(_poll_delay(response))
            return status

        try:
            return await asyncio.wait_for(run(), timeout)
        except TimeoutError:
            raise WaitTimeout(job_id, last) from None

    async def _events(self, job_id: str, last_event_id: str | None) -> AsyncIterator[tuple[str | None, str]]:
        headers = {"Accept": "text/event-stream"}
        if last_event_id:
            headers["Last-Event-ID"] = last_event_id
        async with self._http.stream(
            "GET", f"/v1/jobs/{job_id}/events", headers=headers, timeout=httpx.Timeout(10.0, read=60.0)
        ) as response:
            if not response.is_success:
                await response.aread()
                _raise_for(response)
            parser = _SSEParser()
            async for line in response.aiter_lines():
                block = parser.feed(line)
                if block is not None:
                    yield block[0], block[1]
