"""``GET /v1/jobs/{id}/events``: the job's history and live changes as Server-Sent Events.

Each event's ``id`` is the engine's event ``seq``. A client that reconnects with
``Last-Event-ID`` (browsers' EventSource does it by itself) gets every event after that one, so
nothing is missed; the stream ends after the event that made the job terminal.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from conveyor import serde
from conveyor.api.auth import Principal
from conveyor.api.deps import COMMON_ERRORS, NOT_FOUND, RETRY_AFTER, Service, problem, scope, service
from conveyor.api.problems import ProblemError
from conveyor.api.routes_jobs import find_job
from conveyor.api.schemas import event_view, status_of
from conveyor.backend.protocol import EventsRequest
from conveyor.errors import BackendUnavailable
from conveyor.types import JobEvent

router = APIRouter(prefix="/v1", tags=["jobs"])
RECONNECT_MS = 1000
MAX_SEQ = 2**63 - 1

EVENT_DOC = """Each event: `id` = sequence number, `event` = `enqueued` | `state` | `progress` | `artifact`,
`data` = JSON `{"seq", "job_id", "type", "state", "status", "at", "data"}`.
`data.data` holds `fraction`/`message` for progress and `error` for failures."""


def format_event(event: JobEvent, internals: bool = False) -> str:
    """One SSE frame; ``internals`` (admins) keeps worker ids and tracebacks (see ``event_view``)."""
    payload = {
        "seq": event.seq,
        "job_id": event.job_id,
        "type": event.type,
        "state": event.state.value,
        "status": status_of(event.state),
        "at": datetime.fromtimestamp(event.at, UTC).isoformat(),
        "data": event_view(event.job_id, event.type, event.data, internals),
    }
    return f"id: {event.seq}\nevent: {event.type}\ndata: {serde.dumps(payload)}\n\n"


def last_event_seq(raw: str | None) -> int:
    """The seq a ``Last-Event-ID`` names; 0 for none or an id this server never sent (not a
    number). A number no engine can hold (over 2^63 - 1) is refused here, before the 200: inside
    the stream it could only break the connection."""
    value = (raw or "").strip()
    if not value.isascii() or not value.isdigit():
        return 0
    seq = int(value)
    if seq > MAX_SEQ:
        message = f"must be at most {MAX_SEQ}"
        raise ProblemError(
            422,
            f"Last-Event-ID {message}",
            kind="invalid-request",
            errors=[{"field": "header.Last-Event-ID", "message": message}],
        )
    return seq


def _ends_stream(event: JobEvent) -> bool:
    return event.type != "progress" and event.state.terminal


async def event_stream(
    svc: Service, request: Request, job_id: str, after: int, internals: bool = False
) -> AsyncIterator[str]:
    yield f"retry: {RECONNECT_MS}\n\n"
    last_sent = time.monotonic()
    while True:
        try:
            backend = await svc.backend()
            events = await backend.events(EventsRequest(job_id, after, 500))
        except BackendUnavailable:
            events = []  # the engine blinked: keep the stream open, resume when it is back
        for event in events:
            after = event.seq
            yield format_event(event, internals)
            last_sent = time.monotonic()
            if _ends_stream(event):
                return
        if len(events) == 500:
            continue
        if not events:
            job = None
            with contextlib.suppress(BackendUnavailable):
                job = await (await svc.backend()).get(job_id)
            if job is not None and job.terminal:
                # terminal, and every event up to now was sent: a late subscriber is done
                again = await (await svc.backend()).events(EventsRequest(job_id, after, 500))
                if not again:
                    return
                continue
        if await request.is_disconnected():
            return
        if time.monotonic() - last_sent >= svc.config.sse_keepalive:
            yield ": keepalive\n\n"
            last_sent = time.monotonic()
        await asyncio.sleep(svc.config.sse_poll)


@router.get(
    "/jobs/{job_id}/events",
    summary="Stream a job's state changes and progress (Server-Sent Events)",
    description=EVENT_DOC,
    response_class=StreamingResponse,
    responses={
        200: {"description": "An event stream ending at the terminal state", "content": {"text/event-stream": {}}},
        **COMMON_ERRORS,
        **NOT_FOUND,
        429: problem("This API key holds too many open event streams", RETRY_AFTER),
    },
)
async def job_events(
    job_id: str,
    request: Request,
    principal: Annotated[Principal, Depends(scope("read"))],
    last_event_id: Annotated[
        str | None,
        Header(alias="Last-Event-ID", max_length=30, description="Resume after this event (its seq)"),
    ] = None,
    after: Annotated[
        int | None, Query(ge=0, le=MAX_SEQ, description="Resume after this seq (for clients without headers)")
    ] = None,
) -> StreamingResponse:
    svc = service(request)
    start = max(after or 0, last_event_seq(last_event_id))
    await find_job(svc, principal, job_id)
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    slot = principal.key_id or "anonymous"
    svc.streams.take(slot)
    stream = event_stream(svc, request, job_id, start, principal.admin)
    return SlotStreamingResponse(
        stream, media_type="text/event-stream", headers=headers, release=lambda: svc.streams.give_back(slot)
    )


class SlotStreamingResponse(StreamingResponse):
    """A streaming response that gives its stream slot back when it ends, however it ends."""

    def __init__(self, *args: Any, release: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._release()
