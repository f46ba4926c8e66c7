"""The fleet: live worker nodes (admin) and the scaling signal an autoscaler reads.

``/v1/scaling`` needs only the ``scale`` scope (or admin): a KEDA or HPA scaler gets a key that
can read aggregate queue numbers and nothing about jobs or tenants.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from conveyor.api.auth import Principal
from conveyor.api.deps import COMMON_ERRORS, scope, service
from conveyor.fleet import list_workers, scaling_signal

router = APIRouter(prefix="/v1", tags=["fleet"])


class WorkerInfo(BaseModel):
    model_config = ConfigDict(extra="allow")

    worker_id: str
    alive: bool = Field(description="False once the node missed 3 of its beats (engine clock)")
    silent_for: float = Field(description="Seconds since its last beat")
    started_at: float
    last_seen: float
    host: str | None = None
    pid: int | None = None
    queues: list[str] = Field(default_factory=list)
    state: str | None = Field(None, description="running or draining")
    executors: int | None = None
    in_flight: int | None = Field(None, description="Jobs the node holds a lease on")
    jobs: list[str] = Field(default_factory=list, description="Up to 20 of those jobs")
    version: str | None = None


class WorkerList(BaseModel):
    workers: list[WorkerInfo]
    alive: int
    dead: int


class QueueScaling(BaseModel):
    queue: str
    backlog: int = Field(description="Jobs ready to run now (queued)")
    scheduled: int = Field(description="Jobs due later (delayed, retries in backoff)")
    running: int
    oldest_age: float = Field(description="Seconds the oldest queued job has waited")
    drain_rate: float = Field(description="Jobs finished per second over the last minute")
    drain_seconds: float | None = Field(description="backlog / drain_rate; null when nothing drains a backlog")
    workers: int = Field(description="Live nodes consuming this queue")
    paused: bool


class Scaling(BaseModel):
    queues: dict[str, QueueScaling] = Field(description="By queue name (KEDA metrics-api: queues.<name>.backlog)")


@router.get("/workers", response_model=WorkerList, summary="Live worker nodes (admin)", responses=COMMON_ERRORS)
async def get_workers(request: Request, principal: Annotated[Principal, Depends(scope("admin"))]) -> WorkerList:
    nodes = await list_workers(await service(request).backend())
    workers = [WorkerInfo(**w.to_dict()) for w in nodes]
    alive = sum(1 for w in nodes if w.alive)
    return WorkerList(workers=workers, alive=alive, dead=len(nodes) - alive)


@router.get(
    "/scaling",
    response_model=Scaling,
    summary="Backlog, oldest age and estimated drain time per queue (scope scale)",
    responses=COMMON_ERRORS,
)
async def get_scaling(request: Request, principal: Annotated[Principal, Depends(scope("scale"))]) -> Scaling:
    svc = service(request)
    signals = await scaling_signal(await svc.backend(), svc.conveyor.declared_queues())
    queues: dict[str, Any] = {s.queue: QueueScaling(**s.to_dict()) for s in signals}
    return Scaling(queues=queues)
