"""Jobs: submit (with idempotency and backpressure), status, list, cancel, artifacts."""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, StreamingResponse
from starlette.convertors import StringConvertor, register_url_convertor

from conveyor.api.auth import Principal
from conveyor.api.deps import COMMON_ERRORS, NOT_FOUND, RETRY_AFTER, Service, problem, scope, service
from conveyor.api.forwarded import public_base
from conveyor.api.limits import unstorable_value
from conveyor.api.problems import ProblemError, unavailable
from conveyor.api.schemas import JobList, JobStatus, SubmitRequest
from conveyor.app import Conveyor
from conveyor.backend.protocol import Backend, CancelRequest, EnqueueResult, EventsRequest, JobFilter
from conveyor.batch import check_dependencies, joined_workflow
from conveyor.email import targets as email_targets
from conveyor.errors import (
    BackendUnavailable,
    ConfigError,
    DependencyError,
    IdempotencyConflict,
    InvalidArguments,
    InvalidTransition,
    JobNotFound,
    QueueFull,
    UnknownTask,
)
from conveyor.metrics import SUBMIT_SECONDS
from conveyor.storage import inputs
from conveyor.storage.names import content_disposition
from conveyor.storage.store import ResultStore
from conveyor.task import CallOptions
from conveyor.telemetry import JobEnded
from conveyor.types import Artifact, Job, JobState
from conveyor.webhooks.address import vetted_addresses
from conveyor.webhooks.config import check_url
from conveyor.webhooks.notifier import internal_task


class JobIdConvertor(StringConvertor):
    """A job id never holds ':', so ``/v1/jobs/{id}:cancel`` is never read as the id ``{id}:cancel``
    (an OPTIONS or GET there must name the cancel route's methods, not the status route's)."""

    regex = "[^/:]+"


register_url_convertor("jobid", JobIdConvertor())
router = APIRouter(prefix="/v1", tags=["jobs"])
JOB_PATH = "/v1/jobs"
MAX_RETRY_AFTER = 600
# 1-255 printable ASCII characters other than '"', bare or as a quoted sf-string: the one rule,
# in the OpenAPI document (pattern) and on the server
IDEMPOTENCY_KEY_PATTERN = r'^([\x21\x23-\x7e]{1,255}|"[\x21\x23-\x7e]{1,255}")$'
_KEY_RE = re.compile(IDEMPOTENCY_KEY_PATTERN)

LOCATION_HEADERS = {
    "Location": {
        "description": "Absolute URL of the job's status (base: --public-url, trusted proxy headers or the request)",
        "schema": {"type": "string", "format": "uri"},
    },
    "Operation-Location": {
        "description": "Same as Location (Azure LRO convention)",
        "schema": {"type": "string", "format": "uri"},
    },
    **RETRY_AFTER,
}


def retry_after_for(job: Job, now: float) -> int | None:
    """How long a poller should wait before asking again; None once the job is terminal."""
    if job.terminal:
        return None
    if job.state is JobState.SCHEDULED:
        return int(min(60, max(1, math.ceil(job.run_at - now))))
    if job.state is JobState.WAITING:
        return 5
    return 1


async def as_first_stored(backend: Backend, result: EnqueueResult) -> tuple[JobState, float]:
    """The state and run_at the job was stored with, which the first 202 answered.

    A new job is exactly as stored. For an idempotent replay the job may have moved on (run,
    retried with a later run_at, redriven), so they are read back from the job's first event:
    every engine writes ``enqueued`` with the initial state and run_at in the enqueue's own
    transaction. Costs one read, only on replays.
    """
    job = result.job
    if result.created:
        return job.state, job.run_at
    first = await backend.events(EventsRequest(job.id, 0, 1))
    if first and first[0].type == "enqueued":
        return first[0].state, float(first[0].data.get("run_at", job.run_at))
    return job.state, job.run_at  # history pruned with the job: nothing better to go on


def submission_body(job: Job, initial: JobState, run_at: float) -> dict[str, Any]:
    """The 202 body: the job as it was stored (``initial`` state, ``run_at``), nothing since.

    Because it does not depend on what happened since, an idempotent replay returns exactly
    the same body as the original submit (IETF httpapi Idempotency-Key draft).
    """
    snapshot = Job(
        id=job.id,
        task=job.task,
        queue=job.queue,
        args=job.args,
        state=initial,
        tenant=job.tenant,
        priority=job.priority,
        max_attempts=job.max_attempts,
        run_at=run_at,
        created_at=job.created_at,
        updated_at=job.created_at,
        depends_on=job.depends_on,
        workflow_id=job.workflow_id,
        step=job.step,
        on_dependency_failure=job.on_dependency_failure,
        quorum=job.quorum,
    )
    return JobStatus.from_job(snapshot).model_dump(mode="json")


def job_headers(job: Job, now: float, base: str | None = None) -> dict[str, str]:
    """Retry-After until the job is terminal; with ``base`` (the public base URL) also the absolute
    ``Location``/``Operation-Location`` that generic LRO pollers require."""
    headers: dict[str, str] = {}
    if base is not None:
        url = f"{base}{JOB_PATH}/{job.id}"
        headers["Location"] = url
        headers["Operation-Location"] = url
    retry = retry_after_for(job, now)
    if retry is not None:
        headers["Retry-After"] = str(retry)
    return headers


def idempotency_key_of(raw: str | None) -> str | None:
    """The key of an ``Idempotency-Key`` header: an sf-string (quoted) or a bare token."""
    if raw is None:
        return None
    key = raw.strip()
    if not _KEY_RE.fullmatch(key):
        message = "1-255 printable ASCII characters other than '\"', optionally in double quotes"
        raise ProblemError(
            422,
            f"Idempotency-Key must be {message}",
            kind="invalid-request",
            errors=[{"field": "header.Idempotency-Key", "message": message}],
        )
    return key[1:-1] if key.startswith('"') else key


async def full_queue_retry_after(backend: Backend, exc: QueueFull, window: float) -> int:
    """Seconds until the backlog over the limit has likely drained, from the recent drain rate."""
    try:
        drained = await backend.drain_stats(exc.queue, window)
    except BackendUnavailable:
        drained = 0
    if drained <= 0:
        return 30
    rate = drained / window
    excess = max(1, exc.depth - exc.limit + 1)
    return int(min(MAX_RETRY_AFTER, max(1, math.ceil(excess / rate))))


async def status_of(backend: Backend, job: Job, internals: bool = False) -> JobStatus:
    position = await backend.queue_position(job.id) if job.state is JobState.QUEUED else None
    return JobStatus.from_job(job, position, internals=internals)


async def find_job(svc: Service, principal: Principal, job_id: str) -> Job:
    job = await (await svc.backend()).get(job_id, principal.tenant_filter())
    if job is None:
        raise ProblemError(404, f"job {job_id} not found", kind="job-not-found")
    return job


@router.post(
    "/jobs",
    status_code=202,
    response_model=JobStatus,
    summary="Submit a job",
    responses={
        202: {"description": "Stored; poll Location or stream its events", "headers": LOCATION_HEADERS},
        **COMMON_ERRORS,
        404: problem("Unknown task"),
        413: problem("Request body over the size limit"),
        422: problem("Invalid body or task arguments (one entry per bad field), or idempotency key reuse"),
        429: problem("The queue is at its depth limit (backpressure)", RETRY_AFTER),
    },
)
async def submit(
    body: SubmitRequest,
    request: Request,
    principal: Annotated[Principal, Depends(scope("submit"))],
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            pattern=IDEMPOTENCY_KEY_PATTERN,
            description="Makes the submit safe to retry: a replay returns the original job (retention: see docs)",
        ),
    ] = None,
) -> JSONResponse:
    start = time.perf_counter()
    status = 500
    svc = service(request)
    try:
        response = await _submit(
            svc, principal, body, idempotency_key_of(idempotency_key), public_base(request, svc.config.public_url)
        )
        status = response.status_code
        return response
    except ProblemError as exc:
        status = exc.status
        raise
    finally:
        SUBMIT_SECONDS.labels(str(status)).observe(time.perf_counter() - start)


def declared_queues(conveyor: Conveyor) -> list[str]:
    """Queues a submit may name: the app's ``queues=[...]``, every task's own queue, the internal ones."""
    return conveyor.declared_queues()


def _check_queue(conveyor: Conveyor, queue: str | None) -> None:
    """Refuse a queue the app did not declare: no worker serves it, its depth limit is not the
    one the operator set, and each new name would be a new metrics label."""
    allowed = declared_queues(conveyor)
    if queue is not None and queue not in allowed:
        message = f"queue {queue!r} is not declared; allowed queues: {', '.join(allowed)}"
        raise ProblemError(
            422, message, kind="unknown-queue", errors=[{"field": "body.queue", "message": message}], allowed=allowed
        )


def call_options(body: SubmitRequest, tenant: str, key: str | None) -> CallOptions:
    """The enqueue options of a submit body (dependencies as given: ids, or step names in a batch)."""
    return CallOptions(
        queue=body.queue,
        priority=body.priority,
        delay=body.delay,
        run_at=body.run_at.timestamp() if body.run_at is not None else None,
        idempotency_key=key,
        tenant=tenant,
        depends_on=tuple(body.depends_on),
        step=body.step,
        workflow_id=body.workflow_id,
        on_dependency_failure=body.on_dependency_failure,
        quorum=body.quorum,
        unique_key=body.unique_key,
    )


def check_dependency_fields(body: SubmitRequest, prefix: str = "body.") -> None:
    """422 naming the field when the dependency options do not fit together (quorum vs depends_on)."""
    problems = check_dependencies(body.depends_on, body.quorum)
    if problems:
        errors = [{"field": prefix + f, "message": m} for f, m in problems]
        summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        raise ProblemError(422, f"invalid request: {summary}", kind="invalid-request", errors=errors)


async def workflow_for(svc: Service, principal: Principal, body: SubmitRequest) -> str | None:
    """The workflow a single submit joins (``batch.joined_workflow``)."""
    first = None
    if body.workflow_id is None and body.depends_on:
        first = await (await svc.backend()).get(body.depends_on[0], principal.tenant_filter())
    return joined_workflow(body.workflow_id, body.depends_on, body.step, first)


async def _submit(svc: Service, principal: Principal, body: SubmitRequest, key: str | None, base: str) -> JSONResponse:
    _check_storable(body)
    _check_queue(svc.conveyor, body.queue)
    check_dependency_fields(body)
    options = replace(call_options(body, principal.tenant, key), workflow_id=await workflow_for(svc, principal, body))
    try:
        if internal_task(body.task):
            raise UnknownTask(f"unknown task {body.task!r}")
        request = svc.conveyor.build_request(body.task, body.args, options)
    except UnknownTask as exc:
        raise ProblemError(404, str(exc), kind="unknown-task") from None
    except InvalidArguments as exc:
        errors = [{"field": f"args.{e['field']}", "message": e["message"]} for e in exc.errors]
        raise ProblemError(422, str(exc), kind="invalid-arguments", errors=errors) from None
    except ConfigError as exc:
        raise ProblemError(
            422, str(exc), kind="invalid-request", errors=[{"field": "body", "message": str(exc)}]
        ) from None
    if body.callback_url is not None:  # stored on the job by the same write: a refused submit leaves nothing
        request = replace(request, callback_url=await _callback_url(svc, body.callback_url))
    if body.notify is not None:  # joins the callback field: stored by the same write (conveyor/email/targets.py)
        request = replace(request, callback_url=_notify(svc, request.callback_url, body.notify.email))
    uploads = await _upload_refs(svc, request.args, request.tenant)
    try:
        backend = await svc.backend()
        with svc.conveyor.traced(request) as request:
            result = await svc.conveyor.telemetry.timed("enqueue", svc.submits.enqueue(request))
        svc.conveyor.telemetry.submitted([result.job], [result.created])
        await inputs.link_refs(svc.conveyor.result_store, uploads, result.job.id)
        initial, run_at = await as_first_stored(backend, result)
        # a new job was stamped with the engine's clock in its own commit: no second round trip
        now = result.job.created_at if result.created else await backend.now()
    except QueueFull as exc:
        seconds = await full_queue_retry_after(await svc.backend(), exc, svc.config.drain_window)
        raise ProblemError(
            429, str(exc), kind="queue-full", headers={"Retry-After": str(seconds)}, queue=exc.queue
        ) from None
    except IdempotencyConflict as exc:
        raise ProblemError(
            422,
            "this Idempotency-Key was already used with a different payload",
            kind="idempotency-key-reused",
            errors=[{"field": "header.Idempotency-Key", "message": "already used for a different payload"}],
            job_id=exc.job_id,
        ) from None
    except DependencyError as exc:
        raise ProblemError(
            422, str(exc), kind="unknown-dependency", errors=[{"field": "body.depends_on", "message": str(exc)}]
        ) from None
    except BackendUnavailable as exc:
        raise unavailable(f"the job was not stored: {exc}") from None
    # Anything else the engine raises is a bug, not an outage: it reaches the problem handler
    # as a logged 500 (never a 202, never a 503 that invites retrying a request that cannot work).
    job = result.job
    answer = submission_body(job, initial, run_at)
    return JSONResponse(answer, status_code=202, headers=job_headers(job, now, base))


async def _upload_refs(svc: Service, args: dict[str, Any], tenant: str) -> list[str]:
    """The uploads a submit names, each the tenant's own (else a 422 naming the argument)."""
    try:
        return await inputs.check_refs(svc.conveyor.result_store, args, tenant)
    except inputs.UploadRefError as exc:
        raise ProblemError(
            422, str(exc), kind="invalid-arguments", errors=[{"field": exc.field, "message": exc.detail}]
        ) from None


def _unstorable_text(value: str, nul_ok: bool) -> str | None:
    """Why every engine would refuse this text, or None: it must be valid Unicode (no lone
    surrogate, which JSON's \\ud800 escapes can produce) and, where it is stored as plain
    text rather than inside JSON, free of NUL characters (PostgreSQL text cannot hold them)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "contains a lone surrogate (\\ud800-\\udfff), which is not valid Unicode"
    if not nul_ok and "\x00" in value:
        return "must not contain NUL characters"
    return None


def _unstorable_args(value: Any, path: str) -> tuple[str, str] | None:
    """The first string (or key) of the arguments no engine can store, as (field, reason)."""
    if isinstance(value, str):
        reason = _unstorable_text(value, nul_ok=True)
        return (path, reason) if reason else None
    if isinstance(value, dict):
        for key, item in value.items():
            reason = _unstorable_text(str(key), nul_ok=True)
            if reason:
                return (path, f"has a key that {reason}")
            found = _unstorable_args(item, f"{path}.{key}")
            if found:
                return found
    if isinstance(value, list):
        for i, item in enumerate(value):
            found = _unstorable_args(item, f"{path}.{i}")
            if found:
                return found
    return None


def _check_storable(body: SubmitRequest) -> None:
    """Refuse, naming the field, input the engine would refuse (a 422, not a 5xx from the engine)."""
    found: tuple[str, str] | None = None
    for name in ("task", "queue", "unique_key"):
        value = getattr(body, name)
        reason = _unstorable_text(value, nul_ok=False) if value is not None else None
        if reason:
            found = (name, reason)
            break
    # values first: bounded depth, so the recursive text check below cannot exhaust the stack
    found = found or unstorable_value(body.args, "args") or _unstorable_args(body.args, "args")
    if found is not None:
        field, reason = found
        errors = [{"field": field, "message": reason}]
        raise ProblemError(422, f"invalid request: {field}: {reason}", kind="invalid-request", errors=errors)


def _notify(svc: Service, callback_url: str | None, emails: list[str]) -> str | None:
    """The stored announcement targets with the submit's email recipients; a 422 without SMTP."""
    settings = svc.conveyor.email
    if settings is None or settings.server is None:
        message = "notify.email is not accepted: this server has no SMTP server configured (--smtp-url)"
        raise ProblemError(422, message, kind="invalid-request", errors=[{"field": "body.notify", "message": message}])
    return email_targets.encode(callback_url, emails)


async def _callback_url(svc: Service, url: str) -> str:
    """The callback URL if this server sends callbacks and allows its address; else a 422.

    The host is resolved now so a tenant hears at once that an internal address is refused;
    the delivery resolves and checks again and connects to the address it checked.
    """
    settings = svc.conveyor.webhooks
    try:
        if settings is None or not settings.callbacks:
            raise ValueError("is not accepted: this server has no callback secret configured (see docs/webhooks.md)")
        check_url(url, allow_private=settings.allow_private_callbacks)
        parts = urlsplit(url)
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
            await vetted_addresses(parts.hostname or "", port, settings.allow_private_callbacks)
        except OSError:
            raise ValueError("names a host that does not resolve") from None
    except ValueError as exc:
        message = f"callback_url {exc}"
        raise ProblemError(
            422, message, kind="invalid-request", errors=[{"field": "body.callback_url", "message": message}]
        ) from None
    return url


@router.get(
    "/jobs/{job_id:jobid}",
    response_model=JobStatus,
    summary="Status of a job",
    responses={
        200: {"description": "The job's status; Retry-After until it is terminal", "headers": RETRY_AFTER},
        **COMMON_ERRORS,
        **NOT_FOUND,
    },
)
async def get_job(
    job_id: str, request: Request, principal: Annotated[Principal, Depends(scope("read"))]
) -> JSONResponse:
    svc = service(request)
    job = await find_job(svc, principal, job_id)
    backend = await svc.backend()
    body = (await status_of(backend, job, principal.admin)).model_dump(mode="json")
    return JSONResponse(body, headers=job_headers(job, await backend.now()))


@router.get("/jobs", response_model=JobList, summary="List jobs (newest first)", responses=COMMON_ERRORS)
async def list_jobs(
    request: Request,
    principal: Annotated[Principal, Depends(scope("read"))],
    state: Annotated[list[JobState] | None, Query(description="Repeat to match several states")] = None,
    queue: Annotated[str | None, Query(max_length=200)] = None,
    task: Annotated[str | None, Query(max_length=200)] = None,
    tenant: Annotated[str | None, Query(max_length=200, description="Admins only: one tenant's jobs")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=100, description="next_cursor of the previous page")] = None,
) -> JobList:
    svc = service(request)
    scope_tenant = principal.tenant_filter() if not (principal.admin and tenant) else tenant
    flt = JobFilter(scope_tenant, tuple(state or ()), queue, task, limit, cursor)
    page = await (await svc.backend()).list_jobs(flt)
    jobs = [JobStatus.from_job(j, internals=principal.admin) for j in page.jobs]
    return JobList(jobs=jobs, next_cursor=page.next_cursor)


@router.post(
    "/jobs/{job_id}:cancel",
    response_model=JobStatus,
    summary="Cancel a job",
    responses={**COMMON_ERRORS, **NOT_FOUND, 409: problem("The job already finished")},
)
async def cancel_job(
    job_id: str, request: Request, principal: Annotated[Principal, Depends(scope("submit"))]
) -> JobStatus:
    svc = service(request)
    backend = await svc.backend()
    try:
        job = await backend.cancel(CancelRequest(job_id, principal.tenant_filter(), "canceled over the API"))
        svc.conveyor.telemetry.emit(JobEnded(job.id, job.task, "canceled"))
    except JobNotFound:
        raise ProblemError(404, f"job {job_id} not found", kind="job-not-found") from None
    except InvalidTransition as exc:
        raise ProblemError(409, str(exc), kind="job-finished") from None
    return JobStatus.from_job(job, internals=principal.admin)


def _download_url(store: ResultStore, artifact: Artifact) -> str | None:
    url_of = getattr(store, "download_url", None)
    return url_of(artifact) if url_of is not None else None  # type: ignore[no-any-return]


@router.get(
    "/jobs/{job_id}/artifacts/{name}",
    summary="Download a result file of a job",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "The file, streamed with its content type",
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
        },
        **COMMON_ERRORS,
        404: problem("No such job or artifact"),
    },
)
async def download_artifact(
    job_id: str, name: str, request: Request, principal: Annotated[Principal, Depends(scope("read"))]
) -> StreamingResponse:
    svc = service(request)
    job = await find_job(svc, principal, job_id)
    artifact = next((a for a in job.artifacts if a.name == name), None)
    if artifact is None:
        raise ProblemError(404, f"job {job_id} has no artifact {name!r}", kind="artifact-not-found")
    redirect = await asyncio.to_thread(_download_url, svc.conveyor.result_store, artifact)
    if redirect is not None:  # the store hands out presigned URLs (S3 downloads=redirect)
        return RedirectResponse(redirect, status_code=307)  # type: ignore[return-value]
    try:
        chunks: Iterator[bytes] = svc.conveyor.result_store.open(artifact)
        first = next(chunks, b"")
    except (OSError, ValueError):
        raise ProblemError(404, f"artifact {name!r} is no longer stored", kind="artifact-not-found") from None

    def stream() -> Iterator[bytes]:
        yield first
        yield from chunks

    headers = {"Content-Disposition": content_disposition(name)}
    return StreamingResponse(stream(), media_type=artifact.content_type, headers=headers)
