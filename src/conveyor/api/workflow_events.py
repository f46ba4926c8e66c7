"""``GET /v1/workflows/{id}/events``: a workflow's progress as Server-Sent Events.

A workflow has no event log of its own (its jobs do): the stream re-reads the workflow's summary
every ``WORKFLOW_POLL_FACTOR`` job-stream polls and sends what changed. The first frame is always
the whole workflow (``event: workflow``), so a client that reconnects (with or without
``Last-Event-ID``) is up to date at once and can miss nothing; then one ``event: step`` per step
whose state or progress changed and a ``workflow`` frame (without its steps) whenever the overall
state or progress changed. The stream ends after the frame that shows every step ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse

from conveyor import serde
from conveyor.api.auth import Principal
from conveyor.api.deps import COMMON_ERRORS, RETRY_AFTER, Service, problem, scope, service
from conveyor.api.events import RECONNECT_MS, SlotStreamingResponse
from conveyor.api.routes_workflows import WORKFLOW_NOT_FOUND, WorkflowId, find_workflow
from conveyor.api.schemas import WorkflowView
from conveyor.errors import BackendUnavailable

router = APIRouter(prefix="/v1", tags=["workflows"])
WORKFLOW_POLL_FACTOR = 4
"""A workflow re-reads all its jobs: it polls this many times less often than one job's stream."""

EVENT_DOC = """The first event is `workflow` with the whole workflow (as `GET /v1/workflows/{id}`);
then `step` (one step, as in `steps[]`) for each step whose state or progress changed and
`workflow` (the same body without `steps`) when the overall state or progress changed. The
stream ends once every step ended. A reconnect starts again with the whole workflow."""


def _frame(seq: int, kind: str, payload: dict[str, Any]) -> str:
    return f"id: {seq}\nevent: {kind}\ndata: {serde.dumps(payload)}\n\n"


def _overall(view: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in view.items() if k != "steps"}


async def workflow_stream(
    svc: Service, request: Request, workflow_id: str, tenant: str | None, internals: bool
) -> AsyncIterator[str]:
    yield f"retry: {RECONNECT_MS}\n\n"
    seq = 0
    last_steps: dict[str, dict[str, Any]] = {}
    last_overall: dict[str, Any] | None = None
    last_sent = time.monotonic()
    while True:
        workflow = None
        with contextlib.suppress(BackendUnavailable):  # the engine blinked: keep the stream open
            workflow = await svc.conveyor.workflow_async(workflow_id, tenant)
        if workflow is not None:
            view = WorkflowView.from_status(workflow, internals=internals).model_dump(mode="json")
            if last_overall is None:
                seq += 1
                yield _frame(seq, "workflow", view)
            else:
                for step in view["steps"]:
                    if last_steps.get(step["id"]) != step:
                        seq += 1
                        yield _frame(seq, "step", step)
                if _overall(view) != last_overall:
                    seq += 1
                    yield _frame(seq, "workflow", _overall(view))
            last_steps = {s["id"]: s for s in view["steps"]}
            if seq:
                last_sent = time.monotonic()
            last_overall = _overall(view)
            if workflow.terminal:
                return
        if await request.is_disconnected():
            return
        if time.monotonic() - last_sent >= svc.config.sse_keepalive:
            yield ": keepalive\n\n"
            last_sent = time.monotonic()
        await asyncio.sleep(svc.config.sse_poll * WORKFLOW_POLL_FACTOR)


@router.get(
    "/workflows/{workflow_id}/events",
    summary="Stream a workflow's progress (Server-Sent Events)",
    description=EVENT_DOC,
    response_class=StreamingResponse,
    responses={
        200: {"description": "An event stream ending once every step ended", "content": {"text/event-stream": {}}},
        **COMMON_ERRORS,
        **WORKFLOW_NOT_FOUND,
        429: problem("This API key holds too many open event streams", RETRY_AFTER),
    },
)
async def workflow_events(
    workflow_id: WorkflowId, request: Request, principal: Annotated[Principal, Depends(scope("read"))]
) -> StreamingResponse:
    svc = service(request)
    await find_workflow(svc, principal, workflow_id)
    slot = principal.key_id or "anonymous"
    svc.streams.take(slot)
    stream = workflow_stream(svc, request, workflow_id, principal.tenant_filter(), principal.admin)
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return SlotStreamingResponse(
        stream, media_type="text/event-stream", headers=headers, release=lambda: svc.streams.give_back(slot)
    )
