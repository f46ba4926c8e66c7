"""HTTP client for the Conveyor job service, sync and async, on httpx.

``ConveyorClient`` and ``AsyncConveyorClient`` have the same methods with the same arguments
and the same errors: ``submit`` (with an optional idempotency key), ``get``, ``cancel``,
``tasks`` and ``wait`` (streams the job's Server-Sent Events and falls back to polling that
honours ``Retry-After``). Every error answer, and every failure to reach the service, raises
``ClientError`` carrying the status code (0: unreachable) and the RFC 9457 problem body;
``wait`` raises ``WaitTimeout`` after ``timeout``.

Both are thin transports: what to send, how to read the answer and how ``wait`` proceeds live
once, without I/O, in ``conveyor.client_core``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import httpx

from conveyor import client_core as core
from conveyor.api.schemas import BatchResult, JobStatus, WorkflowView
from conveyor.client_core import ClientError, WaitTimeout

__all__ = [
    "AsyncConveyorClient",
    "BatchResult",
    "ClientError",
    "ConveyorClient",
    "JobStatus",
    "WaitTimeout",
    "WorkflowView",
]

R = TypeVar("R")
UpdateCallback = Callable[[JobStatus], Any]
WorkflowCallback = Callable[[WorkflowView], Any]
"""Called with each new status during ``wait`` (the async client awaits it if it is a coroutine)."""
DEFAULT_TIMEOUT = 10.0


class ConveyorClient:
    """Blocking client: ``ConveyorClient("http://127.0.0.1:8000", api_key=...)``."""

    def __init__(self, base_url: str, api_key: str | None = None, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._http = httpx.Client(base_url=self.base_url, headers=core.default_headers(api_key), timeout=timeout)

    def __enter__(self) -> ConveyorClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _send(self, call: core.Call[R]) -> R:
        return call.read(self._exchange(call))

    def _exchange(self, call: core.Call[Any]) -> httpx.Response:
        try:
            return self._http.request(call.method, call.path, json=call.json, headers=dict(call.headers))
        except httpx.HTTPError as exc:
            raise core.unreachable(exc) from exc

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
        depends_on: Sequence[str] = (),
        step: str | None = None,
        workflow_id: str | None = None,
        on_dependency_failure: str | None = None,
        quorum: int | None = None,
    ) -> JobStatus:
        """Submit a job; with ``idempotency_key`` a retried submit returns the same job.

        ``depends_on`` (job ids) makes it wait for them; ``on_dependency_failure`` is ``cancel``
        (default), ``continue`` or ``wait``; ``quorum`` how many must succeed. It joins
        ``workflow_id``, else its first dependency's workflow.
        """
        call = core.submit(
            task,
            args,
            queue=queue,
            priority=priority,
            delay=delay,
            run_at=run_at,
            idempotency_key=idempotency_key,
            depends_on=depends_on,
            step=step,
            workflow_id=workflow_id,
            on_dependency_failure=on_dependency_failure,
            quorum=quorum,
        )
        return self._send(call)

    def submit_batch(
        self,
        items: Sequence[Mapping[str, Any]],
        *,
        workflow_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> BatchResult:
        """Submit several jobs in one transaction, as one workflow: all are stored or none.

        Each item is a dict as ``POST /v1/jobs`` takes it (build one with
        ``conveyor.client_core.submit_body``), plus ``step`` names that later items may list in
        ``depends_on`` and an optional per-item ``idempotency_key``. A 422 ``ClientError`` names
        every bad field as ``items[i].field``.
        """
        return self._send(core.submit_batch(items, workflow_id=workflow_id, idempotency_key=idempotency_key))

    def workflow(self, workflow_id: str) -> WorkflowView:
        """The workflow: each step's state, the aggregate progress, the failed steps."""
        return self._send(core.workflow(workflow_id))

    def cancel_workflow(self, workflow_id: str) -> WorkflowView:
        """Cancel every unfinished step of the workflow; the workflow afterwards."""
        return self._send(core.cancel_workflow(workflow_id))

    def wait_workflow(
        self, workflow_id: str, *, timeout: float | None = None, on_update: WorkflowCallback | None = None
    ) -> WorkflowView:
        """Poll the workflow (at its Retry-After) until every step ended; ``on_update`` gets each
        change. Raises WaitTimeout (``last``: None) after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        last: WorkflowView | None = None
        while True:
            call = core.workflow(workflow_id)
            response = self._exchange(call)
            view = call.read(response)
            if on_update is not None and (last is None or last.model_dump() != view.model_dump()):
                on_update(view)
            last = view
            if view.terminal:
                return view
            pause = core.poll_delay(core.retry_after(response))
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise WaitTimeout(workflow_id, None)
                pause = min(pause, left)
            time.sleep(pause)

    def upload(
        self, source: str | Path | BinaryIO, *, filename: str | None = None, content_type: str | None = None
    ) -> dict[str, Any]:
        """Upload a file (``POST /v1/uploads``, streamed from disk); the answer's ``ref`` goes into
        a job's arguments. Returns the upload record: id, ref, size, sha256, filename, content_type."""
        with core.upload_body(source) as (body, name):
            path, headers = core.upload_target(filename or name, content_type)
            try:
                response = self._http.post(path, content=body, headers=headers, timeout=None)
            except httpx.HTTPError as exc:
                raise core.unreachable(exc) from exc
        return core.read_upload(response)

    def get(self, job_id: str) -> JobStatus:
        return self._send(core.get(job_id))

    def cancel(self, job_id: str) -> JobStatus:
        return self._send(core.cancel(job_id))

    def tasks(self) -> list[dict[str, Any]]:
        return self._send(core.tasks())

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
        at the server's ``Retry-After`` if streaming is not possible (``stream=False`` forces
        polling). Raises WaitTimeout.
        """
        plan = core.wait_plan(job_id, timeout, stream)
        with contextlib.ExitStack() as streams, contextlib.closing(plan):
            lines: Iterator[str] = iter(())
            reply: Any = None
            error: ClientError | None = None
            while True:
                try:
                    step = plan.send(reply) if error is None else plan.throw(error)
                except StopIteration as done:
                    return done.value  # type: ignore[no-any-return]
                reply, error = None, None
                try:
                    if isinstance(step, core.Fetch):
                        reply = self._exchange(step.call)
                    elif isinstance(step, core.Listen):
                        streams.close()
                        reply, lines = self._listen(streams, step)
                    elif isinstance(step, core.NextLine):
                        reply = next(lines, None)
                    elif isinstance(step, core.Pause):
                        time.sleep(step.seconds)
                    elif on_update is not None:
                        on_update(step.status)
                except httpx.HTTPError as exc:
                    error = core.unreachable(exc)
                except ClientError as exc:
                    error = exc

    def _listen(self, streams: contextlib.ExitStack, step: core.Listen) -> tuple[httpx.Response, Iterator[str]]:
        timeout = httpx.Timeout(self.timeout, read=step.read_timeout)
        response = streams.enter_context(self._http.stream("GET", step.path, headers=step.headers, timeout=timeout))
        if not response.is_success:
            response.read()
        return response, response.iter_lines()


class AsyncConveyorClient:
    """The same client for asyncio code: ``await client.submit(...)``."""

    def __init__(self, base_url: str, api_key: str | None = None, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._http = httpx.AsyncClient(base_url=self.base_url, headers=core.default_headers(api_key), timeout=timeout)

    async def __aenter__(self) -> AsyncConveyorClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _send(self, call: core.Call[R]) -> R:
        return call.read(await self._exchange(call))

    async def _exchange(self, call: core.Call[Any]) -> httpx.Response:
        try:
            return await self._http.request(call.method, call.path, json=call.json, headers=dict(call.headers))
        except httpx.HTTPError as exc:
            raise core.unreachable(exc) from exc

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
        depends_on: Sequence[str] = (),
        step: str | None = None,
        workflow_id: str | None = None,
        on_dependency_failure: str | None = None,
        quorum: int | None = None,
    ) -> JobStatus:
        """Submit a job; with ``idempotency_key`` a retried submit returns the same job.

        ``depends_on`` (job ids) makes it wait for them; ``on_dependency_failure`` is ``cancel``
        (default), ``continue`` or ``wait``; ``quorum`` how many must succeed. It joins
        ``workflow_id``, else its first dependency's workflow.
        """
        call = core.submit(
            task,
            args,
            queue=queue,
            priority=priority,
            delay=delay,
            run_at=run_at,
            idempotency_key=idempotency_key,
            depends_on=depends_on,
            step=step,
            workflow_id=workflow_id,
            on_dependency_failure=on_dependency_failure,
            quorum=quorum,
        )
        return await self._send(call)

    async def submit_batch(
        self,
        items: Sequence[Mapping[str, Any]],
        *,
        workflow_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> BatchResult:
        """Submit several jobs in one transaction, as one workflow: all are stored or none.

        Each item is a dict as ``POST /v1/jobs`` takes it (build one with
        ``conveyor.client_core.submit_body``), plus ``step`` names that later items may list in
        ``depends_on`` and an optional per-item ``idempotency_key``. A 422 ``ClientError`` names
        every bad field as ``items[i].field``.
        """
        return await self._send(core.submit_batch(items, workflow_id=workflow_id, idempotency_key=idempotency_key))

    async def workflow(self, workflow_id: str) -> WorkflowView:
        """The workflow: each step's state, the aggregate progress, the failed steps."""
        return await self._send(core.workflow(workflow_id))

    async def cancel_workflow(self, workflow_id: str) -> WorkflowView:
        """Cancel every unfinished step of the workflow; the workflow afterwards."""
        return await self._send(core.cancel_workflow(workflow_id))

    async def wait_workflow(
        self, workflow_id: str, *, timeout: float | None = None, on_update: WorkflowCallback | None = None
    ) -> WorkflowView:
        """Poll the workflow (at its Retry-After) until every step ended; ``on_update`` gets each
        change. Raises WaitTimeout (``last``: None) after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        last: WorkflowView | None = None
        while True:
            call = core.workflow(workflow_id)
            response = await self._exchange(call)
            view = call.read(response)
            if on_update is not None and (last is None or last.model_dump() != view.model_dump()):
                outcome = on_update(view)
                if asyncio.iscoroutine(outcome):
                    await outcome
            last = view
            if view.terminal:
                return view
            pause = core.poll_delay(core.retry_after(response))
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise WaitTimeout(workflow_id, None)
                pause = min(pause, left)
            await asyncio.sleep(pause)

    async def upload(
        self, source: str | Path | BinaryIO, *, filename: str | None = None, content_type: str | None = None
    ) -> dict[str, Any]:
        """``upload`` for asyncio code (the file is read in chunks as it is sent)."""
        with core.upload_body(source) as (body, name):
            path, headers = core.upload_target(filename or name, content_type)
            try:
                response = await self._http.post(path, content=core.async_chunks(body), headers=headers, timeout=None)
            except httpx.HTTPError as exc:
                raise core.unreachable(exc) from exc
        return core.read_upload(response)

    async def get(self, job_id: str) -> JobStatus:
        return await self._send(core.get(job_id))

    async def cancel(self, job_id: str) -> JobStatus:
        return await self._send(core.cancel(job_id))

    async def tasks(self) -> list[dict[str, Any]]:
        return await self._send(core.tasks())

    async def wait(
        self,
        job_id: str,
        *,
        timeout: float | None = None,
        on_update: UpdateCallback | None = None,
        stream: bool = True,
    ) -> JobStatus:
        """Await the job's terminal status; see ``ConveyorClient.wait``."""
        plan = core.wait_plan(job_id, timeout, stream)
        async with contextlib.AsyncExitStack() as streams:
            lines: AsyncIterator[str] = _no_lines()
            reply: Any = None
            error: ClientError | None = None
            try:
                while True:
                    try:
                        step = plan.send(reply) if error is None else plan.throw(error)
                    except StopIteration as done:
                        return done.value  # type: ignore[no-any-return]
                    reply, error = None, None
                    try:
                        if isinstance(step, core.Fetch):
                            reply = await self._exchange(step.call)
                        elif isinstance(step, core.Listen):
                            await streams.aclose()
                            reply, lines = await self._listen(streams, step)
                        elif isinstance(step, core.NextLine):
                            reply = await anext(lines, None)
                        elif isinstance(step, core.Pause):
                            await asyncio.sleep(step.seconds)
                        elif on_update is not None:
                            outcome = on_update(step.status)
                            if asyncio.iscoroutine(outcome):
                                await outcome
                    except httpx.HTTPError as exc:
                        error = core.unreachable(exc)
                    except ClientError as exc:
                        error = exc
            finally:
                plan.close()

    async def _listen(
        self, streams: contextlib.AsyncExitStack, step: core.Listen
    ) -> tuple[httpx.Response, AsyncIterator[str]]:
        timeout = httpx.Timeout(self.timeout, read=step.read_timeout)
        response = await streams.enter_async_context(
            self._http.stream("GET", step.path, headers=step.headers, timeout=timeout)
        )
        if not response.is_success:
            await response.aread()
        return response, response.aiter_lines()


async def _no_lines() -> AsyncIterator[str]:
    return
    yield  # an empty async generator: no stream is open yet
