"""Workflows over HTTP: submit a batch as one workflow, read a workflow whole, cancel it.

``POST /v1/jobs:batch`` stores every item in one transaction (``Backend.enqueue_many``) or none:
each item is validated first and every bad field of every item is answered at once (``422``,
``items[3].args.title``). Items depend on earlier items by step name (``conveyor.batch``).
``GET /v1/workflows/{id}`` is the summary of ``conveyor.workflows``; a tenant sees only its own
jobs, so another tenant's workflow is a 404 like another tenant's job.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Request
from fastapi.responses import JSONResponse

from conveyor.api.auth import Principal
from conveyor.api.deps import COMMON_ERRORS, RETRY_AFTER, Service, problem, scope, service
from conveyor.api.forwarded import public_base
from conveyor.api.limits import unstorable_value
from conveyor.api.problems import ProblemError, unavailable
from conveyor.api.routes_jobs import (
    IDEMPOTENCY_KEY_PATTERN,
    _callback_url,
    _check_queue,
    _unstorable_args,
    as_first_stored,
    call_options,
    full_queue_retry_after,
    idempotency_key_of,
    submission_body,
)
from conveyor.api.schemas import WORKFLOW_ID_PATTERN, BatchRequest, BatchResult, WorkflowView
from conveyor.batch import BatchInvalid, BatchItem, ItemError, plan_batch
from conveyor.errors import BackendUnavailable, DependencyError, IdempotencyConflict, QueueFull
from conveyor.webhooks.notifier import internal_task
from conveyor.workflows import WorkflowStatus

router = APIRouter(prefix="/v1", tags=["workflows"])
WORKFLOW_PATH = "/v1/workflows"
WorkflowId = Annotated[str, Path(pattern=WORKFLOW_ID_PATTERN, description="The workflow's id")]
WORKFLOW_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: problem("No such workflow for this tenant")}


def _invalid(errors: list[ItemError]) -> ProblemError:
    fields = [{"field": f"items[{e.index}].{e.field}", "message": e.message} for e in errors]
    summary = "; ".join(f"{f['field']}: {f['message']}" for f in fields[:5])
    more = f" (and {len(fields) - 5} more)" if len(fields) > 5 else ""
    return ProblemError(422, f"invalid batch, nothing was stored: {summary}{more}", kind="invalid-batch", errors=fields)


def _check_items(svc: Service, body: BatchRequest) -> None:
    """What every engine or this server would refuse, for every item at once."""
    errors: list[ItemError] = []
    for index, item in enumerate(body.items):
        found = unstorable_value(item.args, "args") or _unstorable_args(item.args, "args")
        if found is not None:
            errors.append(ItemError(index, found[0], found[1]))
        try:
            _check_queue(svc.conveyor, item.queue)
        except ProblemError as exc:
            errors.append(ItemError(index, "queue", exc.detail))
        if item.delay is not None and item.run_at is not None:
            errors.append(ItemError(index, "delay", "give either delay or run_at, not both"))
    if errors:
        raise _invalid(errors)


@router.post(
    "/jobs:batch",
    status_code=202,
    response_model=BatchResult,
    summary="Submit several jobs at once, as one workflow, in one transaction",
    description="Every item is validated first; one bad field anywhere stores nothing and the 422 "
    "names each bad field (`items[3].args.title`). An item may depend on an earlier item by its "
    "`step` name. With an `Idempotency-Key` header, item *i* gets the key `<key>/<i>` unless it has "
    "its own; a batch whose every item has a key can be sent again and answers the original jobs.",
    responses={
        202: {
            "description": "Stored; follow the workflow at Location",
            "headers": {
                "Location": {
                    "description": "Absolute URL of the workflow (GET /v1/workflows/{id})",
                    "schema": {"type": "string", "format": "uri"},
                }
            },
        },
        **COMMON_ERRORS,
        413: problem("Request body over the size limit"),
        422: problem("Invalid items (one entry per bad field, `items[i].field`), unknown dependency, key reuse"),
        429: problem("A queue is at its depth limit (backpressure); nothing was stored", RETRY_AFTER),
    },
)
async def submit_batch(
    body: BatchRequest,
    request: Request,
    principal: Annotated[Principal, Depends(scope("submit"))],
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            pattern=IDEMPOTENCY_KEY_PATTERN,
            description="Key of the whole batch: item i gets `<key>/<i>` unless it has its own",
        ),
    ] = None,
) -> JSONResponse:
    svc = service(request)
    _check_items(svc, body)
    batch_key = idempotency_key_of(idempotency_key)
    items: list[BatchItem] = []
    for index, item in enumerate(body.items):
        key = item.idempotency_key or (f"{batch_key}/{index}" if batch_key else None)
        options = call_options(item, principal.tenant, key)
        items.append(BatchItem(item.task, item.args, options))
    try:
        plan = plan_batch(svc.conveyor, items, workflow_id=body.workflow_id, hidden=internal_task)
    except BatchInvalid as exc:
        raise _invalid(exc.errors) from None
    requests = plan.requests
    for index, item in enumerate(body.items):
        if item.callback_url is not None:
            requests[index] = replace(requests[index], callback_url=await _callback_url(svc, item.callback_url))
    try:
        results = await svc.conveyor.submit_requests_async(requests)
        backend = await svc.backend()
        firsts = [await as_first_stored(backend, r) for r in results]
    except QueueFull as exc:
        seconds = await full_queue_retry_after(await svc.backend(), exc, svc.config.drain_window)
        raise ProblemError(
            429, f"nothing was stored: {exc}", kind="queue-full", headers={"Retry-After": str(seconds)}, queue=exc.queue
        ) from None
    except IdempotencyConflict as exc:
        raise ProblemError(
            422,
            "an item's idempotency key was already used with a different payload; nothing was stored",
            kind="idempotency-key-reused",
            errors=[{"field": "items[].idempotency_key", "message": str(exc)}],
            job_id=exc.job_id,
        ) from None
    except DependencyError as exc:
        raise ProblemError(
            422,
            f"nothing was stored: {exc}",
            kind="unknown-dependency",
            errors=[{"field": "items[].depends_on", "message": str(exc)}],
        ) from None
    except BackendUnavailable as exc:
        raise unavailable(f"the batch was not stored: {exc}") from None
    jobs = [submission_body(r.job, state, run_at) for r, (state, run_at) in zip(results, firsts, strict=True)]
    # a replay answers the original jobs, whose workflow is the original one
    workflow_id = next((r.job.workflow_id for r in results if r.job.workflow_id), plan.workflow_id)
    answer = {"workflow_id": workflow_id, "jobs": jobs, "created": [r.created for r in results]}
    base = public_base(request, svc.config.public_url)
    return JSONResponse(answer, status_code=202, headers={"Location": f"{base}{WORKFLOW_PATH}/{workflow_id}"})


async def find_workflow(svc: Service, principal: Principal, workflow_id: str) -> WorkflowStatus:
    workflow = await svc.conveyor.workflow_async(workflow_id, principal.tenant_filter())
    if workflow is None:
        raise ProblemError(404, f"workflow {workflow_id} not found", kind="workflow-not-found")
    return workflow


def workflow_headers(workflow: WorkflowStatus) -> dict[str, str]:
    return {} if workflow.terminal else {"Retry-After": "2"}


@router.get(
    "/workflows/{workflow_id:jobid}",
    response_model=WorkflowView,
    summary="A workflow: every step, the overall state, the aggregate progress, the failed steps",
    responses={
        200: {"description": "The workflow; Retry-After until every step ended", "headers": RETRY_AFTER},
        **COMMON_ERRORS,
        **WORKFLOW_NOT_FOUND,
    },
)
async def get_workflow(
    workflow_id: WorkflowId, request: Request, principal: Annotated[Principal, Depends(scope("read"))]
) -> JSONResponse:
    workflow = await find_workflow(service(request), principal, workflow_id)
    body = WorkflowView.from_status(workflow, internals=principal.admin).model_dump(mode="json")
    return JSONResponse(body, headers=workflow_headers(workflow))


@router.post(
    "/workflows/{workflow_id}:cancel",
    response_model=WorkflowView,
    summary="Cancel every unfinished step of a workflow",
    responses={**COMMON_ERRORS, **WORKFLOW_NOT_FOUND, 409: problem("Every step already ended")},
)
async def cancel_workflow(
    workflow_id: WorkflowId, request: Request, principal: Annotated[Principal, Depends(scope("submit"))]
) -> WorkflowView:
    svc = service(request)
    before = await find_workflow(svc, principal, workflow_id)
    if before.terminal:
        raise ProblemError(409, f"workflow {workflow_id} already {before.state}", kind="workflow-finished")
    after = await svc.conveyor.cancel_workflow_async(
        workflow_id, principal.tenant_filter(), "workflow canceled over the API"
    )
    return WorkflowView.from_status(after or before, internals=principal.admin)
