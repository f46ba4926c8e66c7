"""Request and response bodies of the job service, shared by the server and the Python client.

Plain pydantic, no web framework: ``conveyor.client`` imports ``JobStatus`` from here so the
client's model is the server's model and they cannot drift apart.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from urllib.parse import quote

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from conveyor.batch import MAX_BATCH, MAX_DEPENDENCIES, STEP_PATTERN
from conveyor.types import DependencyPolicy, Job, JobState

Status = Literal["notStarted", "running", "succeeded", "failed", "canceled"]
TERMINAL_STATUSES: frozenset[str] = frozenset({"succeeded", "failed", "canceled"})

_STATUS_OF: dict[JobState, Status] = {
    JobState.WAITING: "notStarted",
    JobState.SCHEDULED: "notStarted",
    JobState.QUEUED: "notStarted",
    JobState.RUNNING: "running",
    JobState.SUCCEEDED: "succeeded",
    JobState.FAILED: "failed",
    JobState.CANCELED: "canceled",
}


def status_of(state: JobState) -> Status:
    """The coarse Azure long-running-operation status of a detailed state."""
    return _STATUS_OF[state]


def timestamp(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


class Progress(BaseModel):
    fraction: float | None = Field(None, ge=0.0, le=1.0, description="0..1, as reported by the task")
    message: str | None = None


class JobError(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str = Field(description="Exception class or a Conveyor reason such as LeaseExpired or Canceled")
    message: str = ""


def error_view(error: dict[str, Any] | None, internals: bool) -> JobError | None:
    """A job's error as shown: type and message to tenants, everything (traceback) to operators."""
    if not error:
        return None
    if internals:
        return JobError.model_validate(error)
    return JobError(type=str(error.get("type", "Error")), message=str(error.get("message", "")))


def artifact_url(prefix: str, job_id: str, name: str) -> str:
    """The download URL of an artifact; the name percent-encoded (UTF-8), so any name round-trips."""
    return f"{prefix}/{job_id}/artifacts/{quote(name, safe='')}"


def event_view(
    job_id: str, kind: str, data: dict[str, Any], internals: bool, prefix: str = "/v1/jobs"
) -> dict[str, Any]:
    """An event's data as the API shows it: never a storage location (an artifact event gets
    its download URL instead); to tenants also no worker id (host and pid) and no traceback."""
    out = dict(data)
    if kind == "artifact":
        out.pop("location", None)
        if "name" in out:
            out["url"] = artifact_url(prefix, job_id, str(out["name"]))
    if not internals:
        out.pop("worker", None)
        if isinstance(out.get("error"), dict):
            view = error_view(out["error"], internals=False)
            out["error"] = view.model_dump() if view else None
    return out


class ArtifactInfo(BaseModel):
    name: str
    size: int
    content_type: str
    url: str = Field(description="Relative URL that downloads the file")


class JobStatus(BaseModel):
    """The status body of a job: what ``GET /v1/jobs/{id}`` and ``POST /v1/jobs`` return."""

    model_config = ConfigDict(extra="allow")

    id: str
    task: str
    queue: str
    status: Status = Field(description="Azure LRO status: notStarted | running | succeeded | failed | canceled")
    state: JobState = Field(description="Detailed lifecycle state")
    priority: int = 0
    attempts: int = 0
    max_attempts: int = 1
    progress: Progress | None = None
    queue_position: int | None = Field(
        None, description="Jobs of every tenant claimed before this one in its queue (global count); only while queued"
    )
    args: dict[str, Any] = Field(default_factory=dict)
    result: Any = None
    error: JobError | None = None
    artifacts: list[ArtifactInfo] = Field(default_factory=list)
    depends_on: list[str] = Field(default_factory=list)
    workflow_id: str | None = Field(None, description="The workflow this job belongs to (GET /v1/workflows/{id})")
    step: str | None = Field(None, description="The job's step name inside its workflow")
    on_dependency_failure: DependencyPolicy = Field(
        DependencyPolicy.CANCEL, description="What this job does when a dependency fails or is canceled"
    )
    quorum: int | None = Field(None, description="Dependencies that must succeed before it runs (null: all)")
    created_at: datetime | None = None
    updated_at: datetime | None = None
    run_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @classmethod
    def from_job(
        cls, job: Job, position: int | None = None, prefix: str = "/v1/jobs", *, internals: bool = False
    ) -> JobStatus:
        """The status body; ``internals=True`` (operators: admin keys, the CLI) adds the error's
        traceback, which names server paths a tenant has no business seeing."""
        progress = None
        if job.progress is not None or job.progress_message is not None:
            progress = Progress(fraction=job.progress, message=job.progress_message)
        return cls(
            id=job.id,
            task=job.task,
            queue=job.queue,
            status=status_of(job.state),
            state=job.state,
            priority=job.priority,
            attempts=job.attempts,
            max_attempts=job.max_attempts,
            progress=progress,
            queue_position=position if job.state is JobState.QUEUED else None,
            args=job.args,
            result=job.result,
            # a job stored by an older version may still carry an earlier attempt's error
            error=None if job.state is JobState.SUCCEEDED else error_view(job.error, internals),
            artifacts=[
                ArtifactInfo(
                    name=a.name, size=a.size, content_type=a.content_type, url=artifact_url(prefix, job.id, a.name)
                )
                for a in job.artifacts
            ],
            depends_on=list(job.depends_on),
            workflow_id=job.workflow_id,
            step=job.step,
            on_dependency_failure=job.on_dependency_failure,
            quorum=job.quorum,
            created_at=timestamp(job.created_at),
            updated_at=timestamp(job.updated_at),
            run_at=timestamp(job.run_at),
            started_at=timestamp(job.started_at),
            finished_at=timestamp(job.finished_at),
        )


CALLBACK_URL_PATTERN = (
    r"^[hH][tT][tT][pP][sS]?://([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?([/?#][\x21-\x7e]*)?$"
)
"""The shape of a callback URL (the server also refuses non-public addresses, see docs/webhooks.md)."""


def _a_number(value: Any) -> Any:
    """A number as JSON has it: pydantic's lax mode would read ``true`` as 1 and ``"5"`` as 5."""
    if isinstance(value, bool | str):
        raise ValueError("must be a JSON number, not a boolean or a string")
    return value


WORKFLOW_ID_PATTERN = r"^[A-Za-z0-9_.\-]{1,100}$"
"""A workflow id: generated ones are UUIDs; a client's own may use letters, digits, ``_ . -``."""
REFERENCE_PATTERN = r"^[A-Za-z0-9_.\-]{1,100}$"
"""A dependency: a job id (a UUID), or in a batch the step name of an earlier item."""


class NotifyRequest(BaseModel):
    """``notify`` of a submit: who is told when the job ends (see docs/notifications-email.md)."""

    model_config = ConfigDict(extra="forbid")

    email: list[Annotated[str, Field(min_length=3, max_length=254)]] = Field(
        min_length=1, max_length=20, description="Addresses mailed when the job succeeds, fails or is canceled"
    )

    @field_validator("email")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        from conveyor.email.smtp import check_address

        return list(dict.fromkeys(check_address(a) for a in value))


class SubmitRequest(BaseModel):
    """``POST /v1/jobs``: which task, its arguments, and optional scheduling."""

    model_config = ConfigDict(extra="forbid")

    task: str = Field(min_length=1, max_length=200, description="Registered task name (see GET /v1/tasks)")
    args: dict[str, Any] = Field(default_factory=dict, description="Named arguments, validated against the task")
    queue: str | None = Field(None, min_length=1, max_length=200, description="Override the task's queue")
    # ``false`` or ``"5"`` is refused, not read as 0 or 5 (the schema says integer / number; a
    # JSON number with a zero fraction such as 5.0 is an integer to JSON Schema, and here)
    priority: Annotated[int, Field(ge=-1_000_000, le=1_000_000), BeforeValidator(_a_number)] | None = Field(
        None, description="Higher runs first"
    )
    delay: Annotated[float, Field(ge=0, le=366 * 86400), BeforeValidator(_a_number)] | None = Field(
        None, description="Seconds from now; exclusive with run_at"
    )
    run_at: datetime | None = Field(None, description="RFC 3339 time to run at; exclusive with delay")
    # minLength and pattern in the document only: the validator below (check_url) enforces them
    # with a clearer message than a regular expression would give
    callback_url: Annotated[str, Field(json_schema_extra={"minLength": 1, "pattern": CALLBACK_URL_PATTERN})] | None = (
        Field(
            None,
            max_length=2048,
            description="http(s) URL notified (Standard Webhooks, signed) when the job succeeds, fails or is canceled",
        )
    )

    unique_key: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        pattern=r"^[^\x00]+$",  # stored as text: PostgreSQL text cannot hold NUL
        description="Only one pending or running job per unique key (per tenant): while one is, a submit "
        "with the same key answers that job instead of creating another",
    )
    depends_on: list[Annotated[str, Field(pattern=REFERENCE_PATTERN)]] = Field(
        default_factory=list,
        max_length=MAX_DEPENDENCIES,
        description="Job ids (in a batch also step names of earlier items) this job waits for",
    )
    step: str | None = Field(None, pattern=STEP_PATTERN, description="A name for this job inside its workflow")
    workflow_id: str | None = Field(
        None,
        min_length=1,
        max_length=100,
        pattern=WORKFLOW_ID_PATTERN,
        description="Join this workflow; by default a job joins the workflow of its first dependency",
    )
    on_dependency_failure: DependencyPolicy = Field(
        DependencyPolicy.CANCEL,
        description="cancel (default): canceled when a dependency fails; continue: runs anyway and sees "
        "the failure; wait: stays waiting for a redrive of the dependency",
    )
    quorum: Annotated[int, Field(ge=1, le=MAX_DEPENDENCIES), BeforeValidator(_a_number)] | None = Field(
        None, description="How many dependencies must succeed (continue: end); at most len(depends_on); null: all"
    )
    notify: NotifyRequest | None = Field(None, description="Email the job's end to these addresses")

    @field_validator("callback_url")
    @classmethod
    def _callback_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        from conveyor.webhooks.config import check_url  # the one URL rule, shared with configured endpoints

        return check_url(value, allow_private=True)  # syntax here; the address rule needs the app's settings


class BatchItemRequest(SubmitRequest):
    """One item of ``POST /v1/jobs:batch``: a submit, plus its own idempotency key."""

    idempotency_key: str | None = Field(
        None,
        min_length=1,
        max_length=255,
        pattern=r"^[\x21\x23-\x7e]{1,255}$",
        description="Makes this item safe to resend: give every item a key, or none",
    )


class BatchRequest(BaseModel):
    """``POST /v1/jobs:batch``: submits stored together in one transaction, as one workflow."""

    model_config = ConfigDict(extra="forbid")

    items: list[BatchItemRequest] = Field(min_length=1, max_length=MAX_BATCH)
    workflow_id: str | None = Field(
        None, min_length=1, max_length=100, pattern=WORKFLOW_ID_PATTERN, description="Default: a new id"
    )


class BatchResult(BaseModel):
    workflow_id: str
    jobs: list[JobStatus] = Field(description="One per item, in order, as first stored (a replay: the originals)")
    created: list[bool] = Field(description="Per item: false when the item's idempotency key answered an earlier job")


class WorkflowStepView(BaseModel):
    id: str
    step: str | None
    task: str
    state: JobState
    status: Status
    progress: Progress | None = None
    depends_on: list[str] = Field(default_factory=list)
    layer: int = Field(description="0 without dependencies in the workflow; else 1 + the deepest dependency's layer")
    attempts: int
    max_attempts: int
    error: JobError | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None


class WorkflowView(BaseModel):
    """``GET /v1/workflows/{id}``: every step, the overall state and the aggregate progress."""

    id: str
    state: Literal["pending", "running", "succeeded", "failed", "canceled"]
    status: Status = Field(description="Azure LRO status of the whole workflow")
    progress: float = Field(ge=0.0, le=1.0, description="Finished steps count 1, running ones their fraction")
    counts: dict[str, int] = Field(description="Steps by detailed state")
    failed_steps: list[str] = Field(description="Job ids of the steps that failed")
    steps: list[WorkflowStepView]
    created_at: datetime | None = None
    finished_at: datetime | None = None

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @classmethod
    def from_status(cls, wf: Any, *, internals: bool = False) -> WorkflowView:
        """From a ``conveyor.workflows.WorkflowStatus`` (tracebacks only with ``internals``)."""
        steps = []
        for s in wf.steps:
            progress = None
            if s.progress is not None or s.progress_message is not None:
                progress = Progress(fraction=s.progress, message=s.progress_message)
            steps.append(
                WorkflowStepView(
                    id=s.id,
                    step=s.step,
                    task=s.task,
                    state=s.state,
                    status=status_of(s.state),
                    progress=progress,
                    depends_on=s.depends_on,
                    layer=s.layer,
                    attempts=s.attempts,
                    max_attempts=s.max_attempts,
                    error=error_view(s.error, internals),
                    started_at=timestamp(s.started_at),
                    finished_at=timestamp(s.finished_at),
                )
            )
        status: Status = "notStarted" if wf.state == "pending" else wf.state
        return cls(
            id=wf.id,
            state=wf.state,
            status=status,
            progress=min(1.0, max(0.0, wf.progress)),
            counts=wf.counts,
            failed_steps=[s.id for s in wf.failed],
            steps=steps,
            created_at=timestamp(wf.created_at) if wf.created_at else None,
            finished_at=timestamp(wf.finished_at),
        )


class JobList(BaseModel):
    jobs: list[JobStatus]
    next_cursor: str | None = Field(None, description="Pass as ?cursor= to get the next page; null on the last")


class TaskInfo(BaseModel):
    name: str
    queue: str
    max_attempts: int
    timeout: float | None
    priority: int
    retry: dict[str, Any]
    description: str | None
    args_schema: dict[str, Any] = Field(description="JSON schema of the arguments")


class TaskList(BaseModel):
    tasks: list[TaskInfo]


class QueueInfo(BaseModel):
    name: str
    counts: dict[str, int] = Field(description="Jobs by detailed state")
    pending: int
    oldest_queued_age: float | None = Field(description="Seconds the oldest runnable job has waited")
    paused: bool
    max_depth: int | None = Field(description="Backpressure limit: submits beyond it get 429")
    max_runtime: float | None = Field(
        default=None, description="Seconds a job may run here before it moves to overflow_to (no attempt charged)"
    )
    overflow_to: str | None = Field(default=None, description="The queue overrunning jobs move to")
    priority: int | None = Field(default=None, description="Default priority of submits to this queue")
    concurrency: int | None = Field(default=None, description="At most this many of the queue's jobs run at once")
    rate_limit: str | None = Field(default=None, description="At most this many starts per period, e.g. 100/m")
    retention: float | None = Field(default=None, description="Seconds a finished job of this queue is kept")
    declared_paused: bool | None = Field(
        default=None, description="The paused setting of the queue's declaration, applied when a node starts"
    )
    throughput_per_min: int | None = Field(
        default=None, description="Jobs of the queue that finished in the last 60 s (every tenant; admin only)"
    )


class ScheduleInfo(BaseModel):
    name: str
    task: str
    cron: str | None = Field(description="5-field cron expression, in tz")
    every: float | None = Field(description="Interval in seconds (instead of cron)")
    tz: str
    args: dict[str, Any]
    catch_up: bool = Field(description="Missed ticks are enqueued after downtime (else skipped)")
    next_run: float = Field(description="Next tick, epoch seconds (engine clock)")


class ScheduleList(BaseModel):
    schedules: list[ScheduleInfo]


class QueueList(BaseModel):
    queues: list[QueueInfo]


class RedriveBody(BaseModel):
    """``POST /v1/dead-letters:redrive``: explicit job ids, or every dead letter matching queue/task."""

    model_config = ConfigDict(extra="forbid")

    job_ids: list[str] = Field(default_factory=list, max_length=1000)
    queue: str | None = None
    task: str | None = None


class RedriveResult(BaseModel):
    redriven: int


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    detail: str | None = None


class FieldError(BaseModel):
    field: str
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details (``application/problem+json``)."""

    model_config = ConfigDict(extra="allow")

    type: str = "about:blank"
    title: str
    status: int
    code: str = Field(description="Stable machine-readable error code, e.g. QueueFull, InvalidArguments (docs/api.md)")
    detail: str | None = None
    instance: str | None = None
    errors: list[FieldError] | None = Field(None, description="Field-level detail for invalid input")
    job_id: str | None = None
