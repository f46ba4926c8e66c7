"""Tasks, queues, dead letters and redrive, health and readiness."""

from __future__ import annotations

import inspect
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from conveyor.api.auth import Principal
from conveyor.api.deps import COMMON_ERRORS, NOT_FOUND, problem, scope, service
from conveyor.api.schemas import (
    Health,
    JobList,
    JobStatus,
    QueueInfo,
    QueueList,
    RedriveBody,
    RedriveResult,
    ScheduleInfo,
    ScheduleList,
    TaskInfo,
    TaskList,
)
from conveyor.backend.protocol import JobFilter, RedriveRequest
from conveyor.errors import BackendUnavailable
from conveyor.types import JobState
from conveyor.webhooks.notifier import internal_task

router = APIRouter(prefix="/v1")
health = APIRouter(tags=["health"])


@router.get("/tasks", response_model=TaskList, tags=["tasks"], summary="Registered tasks", responses=COMMON_ERRORS)
async def list_tasks(request: Request, principal: Annotated[Principal, Depends(scope("read"))]) -> TaskList:
    conveyor = service(request).conveyor
    tasks = []
    for task in sorted(conveyor.tasks.values(), key=lambda t: t.name):
        if internal_task(task.name):  # built-in tasks (webhook delivery) are not submittable
            continue
        opts = task.options
        tasks.append(
            TaskInfo(
                name=task.name,
                queue=opts.queue,
                max_attempts=opts.max_attempts,
                timeout=opts.timeout,
                priority=opts.priority,
                retry=opts.retry.to_dict(),
                description=inspect.cleandoc(task.__doc__) if task.__doc__ else None,
                args_schema=task.json_schema(),
            )
        )
    return TaskList(tasks=tasks)


@router.get(
    "/queues",
    response_model=QueueList,
    tags=["queues"],
    summary="Depth by state, age of the oldest queued job, limits",
    responses=COMMON_ERRORS,
)
async def list_queues(request: Request, principal: Annotated[Principal, Depends(scope("read"))]) -> QueueList:
    svc = service(request)
    stats = {s.queue: s for s in await (await svc.backend()).queue_stats(principal.tenant_filter())}
    names = sorted(set(stats) | set(svc.conveyor.declared_queues()))
    backend = await svc.backend()
    admin = principal.tenant_filter() is None
    queues = []
    for name in names:
        st = stats.get(name)
        counts = st.counts if st else {s.value: 0 for s in JobState}
        config = svc.conveyor.queue_config(name)
        queues.append(
            QueueInfo(
                name=name,
                counts=counts,
                pending=st.pending if st else 0,
                oldest_queued_age=st.oldest_queued_age if st else None,
                paused=st.paused if st else False,
                max_depth=config.max_depth,
                max_runtime=config.max_runtime,
                overflow_to=config.overflow_to,
                priority=config.priority,
                concurrency=config.concurrency,
                rate_limit=_rate_text(config.rate_limit),
                retention=config.retention,
                declared_paused=config.paused,
                throughput_per_min=await backend.drain_stats(name, 60.0) if admin else None,
            )
        )
    return QueueList(queues=queues)


@router.get(
    "/schedules",
    response_model=ScheduleList,
    tags=["queues"],
    summary="Periodic jobs and their next run time",
    responses=COMMON_ERRORS,
)
async def list_schedules(request: Request, principal: Annotated[Principal, Depends(scope("read"))]) -> ScheduleList:
    svc = service(request)
    now = await (await svc.backend()).now()
    return ScheduleList(schedules=[ScheduleInfo(**s.to_dict(now)) for s in svc.conveyor.schedules.values()])


@router.get(
    "/dead-letters",
    response_model=JobList,
    tags=["dead letters"],
    summary="Failed jobs that need a human (admin)",
    responses=COMMON_ERRORS,
)
async def list_dead_letters(
    request: Request,
    principal: Annotated[Principal, Depends(scope("admin"))],
    queue: Annotated[str | None, Query(max_length=200)] = None,
    task: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=100)] = None,
) -> JobList:
    flt = JobFilter(None, (JobState.FAILED,), queue, task, limit, cursor)
    page = await (await service(request).backend()).list_jobs(flt)
    return JobList(jobs=[JobStatus.from_job(j, internals=True) for j in page.jobs], next_cursor=page.next_cursor)


@router.post(
    "/dead-letters/{job_id}:redrive",
    response_model=JobStatus,
    tags=["dead letters"],
    summary="Put one failed job back in its queue, attempts reset (admin)",
    responses={**COMMON_ERRORS, **NOT_FOUND, 409: problem("The job is not in the dead-letter set")},
)
async def redrive_one(
    job_id: str, request: Request, principal: Annotated[Principal, Depends(scope("admin"))]
) -> JobStatus:
    from conveyor.api.problems import ProblemError

    backend = await service(request).backend()
    job = await backend.get(job_id)
    if job is None:
        raise ProblemError(404, f"job {job_id} not found", kind="job-not-found")
    if await backend.redrive(RedriveRequest((job_id,))) == 0:
        raise ProblemError(409, f"job {job_id} is {job.state.value}, not failed", kind="not-dead-letter")
    job = await backend.get(job_id)
    assert job is not None
    return JobStatus.from_job(job, internals=True)


@router.post(
    "/dead-letters:redrive",
    response_model=RedriveResult,
    tags=["dead letters"],
    summary="Redrive the listed failed jobs, or every one matching queue/task (admin)",
    responses=COMMON_ERRORS,
)
async def redrive_many(
    body: RedriveBody, request: Request, principal: Annotated[Principal, Depends(scope("admin"))]
) -> RedriveResult:
    backend = await service(request).backend()
    moved = await backend.redrive(RedriveRequest(tuple(body.job_ids), None, body.queue, body.task))
    return RedriveResult(redriven=moved)


@health.get("/healthz", response_model=Health, summary="Liveness: the process answers")
async def healthz() -> Health:
    return Health(status="ok")


@health.get(
    "/readyz",
    response_model=Health,
    summary="Readiness: the job engine is reachable",
    responses={503: {"model": Health, "description": "The engine is unreachable"}},
)
async def readyz(request: Request) -> JSONResponse:
    try:
        await (await service(request).backend()).ping()
    except BackendUnavailable as exc:  # anything else is a bug: a logged 500, not "unavailable"
        body = Health(status="unavailable", detail=f"{type(exc).__name__}: {exc}"[:300])
        return JSONResponse(body.model_dump(), status_code=503, headers={"Retry-After": "5"})
    return JSONResponse(Health(status="ok").model_dump())


def _rate_text(rate: str | tuple[int, float] | None) -> str | None:
    """A declared rate limit as text (``"100/m"``, or ``"5/10s"`` for a (starts, seconds) pair)."""
    if rate is None or isinstance(rate, str):
        return rate
    return f"{rate[0]}/{rate[1]:g}s"
