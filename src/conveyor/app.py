"""The application object: task registry, queue settings, engine from a URL, enqueue API.

One ``Conveyor`` is shared by the web app that submits jobs, the worker that runs them and
the CLI. Its facade (enqueue, get, list_jobs, cancel, redrive, queue_stats, queue_position,
events, pause_queue/resume_queue, migrate) is the one way in: nobody outside the worker and the
API needs the engine itself. Each operation is one ``*_async`` coroutine, run on the caller's
loop with an engine connection bound to that loop; its sync twin (``conveyor.blocking``) runs
the same coroutine on a private event-loop thread (the "portal"), so it works from plain
scripts, Django views and executor processes alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import importlib
import os
import sys
import threading
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar, cast, overload

import pydantic

from conveyor.backend import Backend, create_backend
from conveyor.backend.protocol import (
    CancelRequest,
    EnqueueRequest,
    EnqueueResult,
    EventsRequest,
    JobFilter,
    JobPage,
    PauseRequest,
    RedriveRequest,
)
from conveyor.blocking import blocking
from conveyor.errors import ConfigError, InvalidTransition, JobNotFound, UnknownTask
from conveyor.fleet import WorkerStatus, list_workers
from conveyor.limits import KeySpec, TaskLimits, parse_rate, with_queue_limits
from conveyor.queues import QUEUES_CONFIG_ENV, check_overflow, default_priority, load_queues_config, route_queue
from conveyor.resources import check_needs, resource_queue
from conveyor.schedules import Schedule
from conveyor.storage import inputs
from conveyor.storage.store import FileStore, ResultStore, open_store
from conveyor.storage.uploads import Upload
from conveyor.task import CallOptions, Task, TaskOptions
from conveyor.telemetry import JobEnded, Telemetry
from conveyor.tracing import Tracing
from conveyor.types import (
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_TENANT,
    DependencyPolicy,
    Job,
    JobEvent,
    JobState,
    JSONValue,
    QueueConfig,
    QueueStats,
    RetryPolicy,
)

if TYPE_CHECKING:
    from conveyor.canvas import Signature, Workflow
    from conveyor.email.settings import EmailSettings
    from conveyor.webhooks.config import WebhookEndpoint, WebhookSettings
    from conveyor.workflows import WorkflowStatus

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])
DEFAULT_URL = "sqlite:///var/conveyor.db"
WORKFLOW_PAGE = 500
"""Jobs read per engine call when a workflow is read whole."""


class _Portal:
    """An event loop on a daemon thread, for running coroutines from sync code."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="conveyor-portal", daemon=True)
        self.thread.start()

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
        if not self.thread.is_alive():
            self.loop.close()


class Conveyor:
    """Define tasks, enqueue jobs and inspect them.

    ``url`` picks the engine (``sqlite:///var/conveyor.db``, ``postgresql://...``,
    ``redis://...``); it defaults to ``$CONVEYOR_URL`` and then to a local SQLite file.
    ``webhooks`` (endpoints or a ``WebhookSettings``) announces jobs that end, see docs/webhooks.md;
    ``email`` (an ``EmailSettings``; default: from ``$CONVEYOR_SMTP_URL`` if set) mails them,
    see docs/notifications-email.md.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        queues: Iterable[QueueConfig] = (),
        result_store: ResultStore | str | None = None,
        idempotency_ttl: float = 24 * 3600.0,
        webhooks: WebhookSettings | Iterable[WebhookEndpoint] | None = None,
        tracing: bool | Tracing | None = None,
        email: EmailSettings | None = None,
    ) -> None:
        self.url = url or os.environ.get("CONVEYOR_URL") or DEFAULT_URL
        self.tasks: dict[str, Task] = {}
        self.queues: dict[str, QueueConfig] = {q.name: q for q in queues}
        for config in self.queues.values():
            if config.rate_limit is not None:
                parse_rate(config.rate_limit)  # a bad rate text is refused here, not at the first submit
        check_overflow(self.queues)
        self.schedules: dict[str, Schedule] = {}
        """Periodic jobs (``periodic`` / ``schedule``); every worker node enqueues their ticks."""
        if result_store is None or isinstance(result_store, str):
            # a directory, or s3://bucket/prefix?endpoint=... (docs/operations.md, "Result store")
            result_store = open_store(result_store or os.environ.get("CONVEYOR_RESULTS") or "var/results")
        self.result_store: ResultStore = result_store
        self.idempotency_ttl = idempotency_ttl
        self._backends: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Backend] = weakref.WeakKeyDictionary()
        self._shared_backend: Backend | None = None
        self._backend_lock = threading.Lock()
        self._portal: _Portal | None = None
        self._opened: set[int] = set()
        self.telemetry = Telemetry()
        """Typed events (submits, claims, ends, engine calls) and their handlers: conveyor/telemetry.py."""
        self._metrics_attached = False
        if tracing is None:
            tracing = os.environ.get("CONVEYOR_TRACING", "").lower() in ("1", "true", "yes")
        self.tracing: Tracing | None = Tracing() if tracing is True else (tracing or None)
        """OpenTelemetry spans for submits and runs (``conveyor.tracing``), when turned on."""
        if self.tracing is not None:
            self.telemetry.attach(self.tracing.handle)
        self.webhooks: WebhookSettings | None = None
        if webhooks is not None:
            from conveyor.webhooks.config import WebhookSettings as Settings
            from conveyor.webhooks.deliver import install

            self.webhooks = Settings.of(webhooks)
            install(self, self.webhooks)
        from conveyor.email.settings import EmailSettings as Email

        self.email: EmailSettings | None = email if email is not None else Email.from_env()
        if self.email is not None:
            from conveyor.email.send import install as install_email

            install_email(self, self.email)

    # -- tasks --------------------------------------------------------------------------------

    @overload
    def task(self, fn: F) -> Task: ...

    @overload
    def task(
        self,
        fn: None = None,
        *,
        name: str | None = None,
        queue: str = "default",
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        timeout: float | None = None,
        retry: RetryPolicy | None = None,
        priority: int = 0,
        args_model: type[pydantic.BaseModel] | None = None,
        concurrency: int | None = None,
        concurrency_key: KeySpec = None,
        rate_limit: str | tuple[int, float] | None = None,
        rate_key: KeySpec = None,
        unique_key: KeySpec = None,
        resources: dict[str, int] | None = None,
        expected_runtime: float | None = None,
    ) -> Callable[[F], Task]: ...

    def task(
        self,
        fn: F | None = None,
        *,
        name: str | None = None,
        queue: str = "default",
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        timeout: float | None = None,
        retry: RetryPolicy | None = None,
        priority: int = 0,
        args_model: type[pydantic.BaseModel] | None = None,
        concurrency: int | None = None,
        concurrency_key: KeySpec = None,
        rate_limit: str | tuple[int, float] | None = None,
        rate_key: KeySpec = None,
        unique_key: KeySpec = None,
        resources: dict[str, int] | None = None,
        expected_runtime: float | None = None,
    ) -> Task | Callable[[F], Task]:
        """Register a function as a task: ``@app.task`` or ``@app.task(queue="reports", ...)``.

        Limits (enforced by the engine in the claim, docs/guide-limits.md): ``concurrency=N``
        runs at most N jobs per ``concurrency_key`` at once (a string, or a function of the
        job's args such as ``lambda a: f"tenant:{a['tenant']}"``; default: the task name);
        ``rate_limit="100/m"`` starts at most 100 per minute per ``rate_key`` (same defaults);
        ``unique_key`` (string or function of the args) keeps one pending or running job per key.
        ``resources={"gpu": 1}``: its jobs run only on nodes started with ``--resources gpu=1``
        (or more), at most as many at once as fit in what the node has (conveyor/resources.py).
        """
        if max_attempts < 1:
            raise ConfigError("max_attempts must be at least 1")
        if timeout is not None and timeout <= 0:
            raise ConfigError("timeout must be positive seconds")
        needs = tuple(check_needs(resources or {}).items())
        if expected_runtime is not None and expected_runtime <= 0:
            raise ConfigError("expected_runtime must be positive seconds")

        def register(func: F) -> Task:
            task_name = name or f"{func.__module__}.{func.__qualname__}"
            if task_name in self.tasks:
                raise ConfigError(f"task {task_name!r} is registered twice")
            limits = TaskLimits.declare(
                task_name,
                concurrency=concurrency,
                concurrency_key=concurrency_key,
                rate_limit=rate_limit,
                rate_key=rate_key,
                unique_key=unique_key,
            )
            options = TaskOptions(
                queue,
                max_attempts,
                timeout,
                retry or RetryPolicy(),
                priority,
                limits=limits,
                resources=needs,
                expected_runtime=expected_runtime,
            )
            # the same refusal as at submit time, made at once for the task's own queue
            with_queue_limits(self.queue_config(queue), task_name, limits.declared_keys())
            task = Task(self, func, task_name, options, args_model)
            self.tasks[task_name] = task
            return task

        return register(fn) if fn is not None else register

    def schedule(
        self,
        task: str | Task,
        cron: str | None = None,
        *,
        every: float | None = None,
        tz: str = "UTC",
        args: dict[str, Any] | None = None,
        name: str | None = None,
        catch_up: bool = False,
        grace: float | None = None,
    ) -> Schedule:
        """Run ``task`` at every tick of a 5-field ``cron`` in ``tz`` or ``every`` N seconds.

        Exactly one job per tick, however many worker nodes run (the tick is the job's
        idempotency key); see ``conveyor.schedules.Schedule`` for ``catch_up`` and ``grace``.
        """
        task_obj = task if isinstance(task, Task) else self.get_task(task)
        clean = task_obj.validate(args or {})
        sched = Schedule(name or task_obj.name, task_obj.name, cron, every, tz, clean, catch_up, grace)
        if sched.name in self.schedules:
            raise ConfigError(f"schedule {sched.name!r} is declared twice")
        self.schedules[sched.name] = sched
        return sched

    def periodic(
        self,
        cron: str | None = None,
        *,
        every: float | None = None,
        tz: str = "UTC",
        args: dict[str, Any] | None = None,
        name: str | None = None,
        catch_up: bool = False,
        grace: float | None = None,
        **task_options: Any,
    ) -> Callable[[F], Task]:
        """Register a task and run it on a schedule: ``@app.periodic("*/5 * * * *", tz="Europe/Paris")``.

        ``task_options`` are those of ``task`` (queue, max_attempts, timeout, ...; ``task_name=``
        names the task, ``name=`` the schedule, both defaulting to the function's name).
        """

        def register(func: F) -> Task:
            if "task_name" in task_options:  # ``name=`` names the schedule; the task's is ``task_name=``
                task_options["name"] = task_options.pop("task_name")
            task = self.task(**task_options)(func)
            self.schedule(task, cron, every=every, tz=tz, args=args, name=name, catch_up=catch_up, grace=grace)
            return task

        return register

    def get_task(self, name: str) -> Task:
        try:
            return self.tasks[name]
        except KeyError:
            raise UnknownTask(f"unknown task {name!r}") from None

    def declare_queues(self, configs: Iterable[QueueConfig]) -> None:
        """Add (or replace) queue declarations, e.g. from a config file (``conveyor.queues_config``)."""
        for config in configs:
            self.queues[config.name] = config
        check_overflow(self.queues)

    def queue_config(self, name: str) -> QueueConfig:
        return self.queues.get(name) or QueueConfig(name)

    def queue_retention(self) -> tuple[tuple[str, float], ...]:
        """(queue, seconds) of the queues that declare their own retention."""
        return tuple((q.name, q.retention) for q in self.queues.values() if q.retention is not None)

    def declared_queues(self) -> list[str]:
        """Every queue this app declares: ``queues=[...]``, each task's own queue and the internal
        webhook queue. The API, the dashboard and ``conveyor queues`` list exactly these (plus any
        queue that holds jobs), and only these accept submits."""
        from conveyor.webhooks.notifier import WEBHOOK_QUEUE

        return sorted(set(self.queues) | {t.options.queue for t in self.tasks.values()} | {WEBHOOK_QUEUE})

    def resource_queues(self) -> set[str]:
        """The queues jobs of resource-bound tasks are routed to (``default@gpu``): workers with
        ``--resources`` serve them beside their own queues. Not submittable as a ``queue``
        override (the routing adds the suffix); listed wherever a queue holds jobs."""
        return {
            resource_queue(q, dict(t.options.resources))
            for t in self.tasks.values()
            if t.options.resources
            for q in {t.options.queue, *self.queues}
        }

    # -- engine -------------------------------------------------------------------------------

    def _make_backend(self) -> Backend:
        """The engine itself: metrics and notifications hook in through ``self.telemetry`` and
        the engine's outbox, never by wrapping it."""
        if not self._metrics_attached:
            from conveyor.metrics import prometheus_handler  # lazy: `serve` sets PROMETHEUS_MULTIPROC_DIR first

            self.telemetry.attach(prometheus_handler)
            self._metrics_attached = True
        return create_backend(self.url)

    async def backend(self) -> Backend:
        """The engine connection for the running event loop, opened (and migrated) once."""
        with self._backend_lock:
            if self.url.startswith("sqlite:"):
                # one connection thread serves every loop
                if self._shared_backend is None:
                    self._shared_backend = self._make_backend()
                backend = self._shared_backend
            else:
                loop = asyncio.get_running_loop()
                backend = self._backends.get(loop)  # type: ignore[assignment]
                if backend is None:
                    backend = self._make_backend()
                    self._backends[loop] = backend
        if id(backend) not in self._opened:
            await backend.open()
            self._opened.add(id(backend))
        return backend

    def _sync(self, make: Callable[[], Awaitable[T]]) -> T:
        if self._portal is None:
            with self._backend_lock:
                if self._portal is None:
                    self._portal = _Portal()

        # the caller's context variables (its current trace span, say) follow the call to the portal
        caller = contextvars.copy_context()

        async def run() -> T:
            coro = cast(Coroutine[Any, Any, T], make())
            return await asyncio.get_running_loop().create_task(coro, context=caller)

        return self._portal.call(run())

    def run_sync(self, make: Callable[[Backend], Awaitable[T]]) -> T:
        """Run ``make(backend)`` on the portal loop from sync code.

        A raw engine call, for tests and engine-level tools; applications and the CLI use the
        facade methods instead.
        """

        async def go() -> T:
            return await make(await self.backend())

        return self._sync(go)

    async def aclose(self) -> None:
        """Close the engine connection of the running loop (and the shared SQLite one)."""
        loop = asyncio.get_running_loop()
        backend = self._backends.pop(loop, None)
        if backend is not None:
            self._opened.discard(id(backend))
            await backend.close()
        if self._shared_backend is not None:
            shared, self._shared_backend = self._shared_backend, None
            self._opened.discard(id(shared))
            await shared.close()

    def close(self) -> None:
        """Close connections held by the sync portal and stop it.

        A script that enqueues from sync code should close the app before it exits (or use it
        as a context manager): otherwise the engine's pool is torn down by the interpreter's
        exit, and asyncio reports its pending tasks ("Task was destroyed but it is pending!").
        """
        if self._portal is not None:
            self._sync(self.aclose)
            self._portal.stop()
            self._portal = None

    def __enter__(self) -> Conveyor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Conveyor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- enqueue ------------------------------------------------------------------------------

    def build_request(self, task_name: str, args: dict[str, Any], options: CallOptions | None = None) -> EnqueueRequest:
        """Validate a submit and turn it into an engine request (raises UnknownTask / InvalidArguments)."""
        task = self.get_task(task_name)
        opts = options or CallOptions()
        clean = task.validate(args)
        if opts.delay is not None and opts.run_at is not None:
            raise ConfigError("give either delay or run_at, not both")
        if opts.delay is not None and opts.delay < 0:
            raise ConfigError("delay must not be negative")
        base = route_queue(self.queues, opts.queue or task.options.queue, task.options.expected_runtime)
        queue = resource_queue(base, dict(task.options.resources))
        return EnqueueRequest(
            task=task.name,
            args=clean,
            queue=queue,
            tenant=opts.tenant or DEFAULT_TENANT,
            priority=default_priority(self.queue_config(queue), task.options.priority, opts.priority),
            max_attempts=opts.max_attempts or task.options.max_attempts,
            timeout=opts.timeout or task.options.timeout,
            retry=task.options.retry,
            delay=opts.delay,
            run_at=opts.run_at,
            idempotency_key=opts.idempotency_key,
            idempotency_ttl=self.idempotency_ttl,
            depends_on=tuple(opts.depends_on),
            max_depth=self.queue_config(base).max_depth,
            workflow_id=opts.workflow_id,
            step=opts.step,
            on_dependency_failure=opts.on_dependency_failure,
            quorum=opts.quorum,
            **with_queue_limits(
                self.queue_config(queue), task.name, task.options.limits.fields(clean, opts.unique_key)
            ),
        )

    async def submit_async(
        self, task: str | Task, args: dict[str, Any] | None = None, options: CallOptions | None = None
    ) -> EnqueueResult:
        """Enqueue a job and say whether it is new (``created=False``: an idempotent replay).

        Upload refs in ``args`` (``upload:<id>``, from ``upload``) must name uploads of the
        job's tenant (``UploadError`` otherwise); they are kept as long as the job.
        """
        request = self.build_request(task if isinstance(task, str) else task.name, args or {}, options)
        uploads = await inputs.check_refs(self.result_store, request.args, request.tenant)
        backend = await self.backend()
        with self.traced(request) as request:
            result = await self.telemetry.timed("enqueue", backend.enqueue(request))
            if self.tracing is not None:
                self.tracing.stored(result.job.id)
        self.telemetry.submitted([result.job], [result.created])
        await inputs.link_refs(self.result_store, uploads, result.job.id)
        return result

    def traced(self, request: EnqueueRequest) -> AbstractContextManager[EnqueueRequest]:
        """With tracing on, a send span around the enqueue and the request carrying its context."""
        return nullcontext(request) if self.tracing is None else self.tracing.submit_span(request)

    async def enqueue_async(
        self, task: str | Task, args: dict[str, Any] | None = None, options: CallOptions | None = None
    ) -> Job:
        """Enqueue a job of ``task`` with ``args``; the job as stored (or the original, on a replay)."""
        return (await self.submit_async(task, args, options)).job

    submit = blocking(submit_async)
    enqueue = blocking(enqueue_async)

    # -- workflows: many jobs in one engine call (conveyor/canvas.py) ----------------------------

    async def enqueue_many_async(self, items: Iterable[Signature], *, workflow_id: str | None = None) -> Workflow:
        """Enqueue signatures (and the ones they run ``.after``) in ONE engine call: every job
        is stored or none is. They share one workflow id (a new one unless given)."""
        from conveyor.canvas import Workflow, new_workflow_id, plan

        wf = workflow_id or new_workflow_id()
        _, requests = plan(items, wf)
        backend = await self.backend()
        results = await self.telemetry.timed("enqueue", backend.enqueue_many(requests))
        self.telemetry.submitted([r.job for r in results], [r.created for r in results])
        return Workflow(wf, [r.job for r in results])

    async def chain_async(self, *steps: Signature, workflow_id: str | None = None) -> Workflow:
        """Each step after the previous one (``ctx.results`` of a step holds the previous
        step's result), enqueued in one call; ``workflow.last`` is the final step."""
        from conveyor.canvas import chained

        return await self.enqueue_many_async(chained(steps), workflow_id=workflow_id)

    async def group_async(
        self,
        *members: Signature,
        then: Signature | None = None,
        quorum: int | None = None,
        on_dependency_failure: DependencyPolicy | str | None = None,
        workflow_id: str | None = None,
    ) -> Workflow:
        """The members side by side and ``then`` (the fan-in) once all of them, or ``quorum``
        of them, succeeded; ``on_dependency_failure`` is the fan-in's policy. One call."""
        from conveyor.canvas import grouped

        policy = None if on_dependency_failure is None else DependencyPolicy(on_dependency_failure)
        return await self.enqueue_many_async(grouped(members, then, quorum, policy), workflow_id=workflow_id)

    async def fan_out_async(
        self,
        task: Task,
        items: Sequence[JSONValue],
        *,
        chunk_size: int = 1000,
        then: Signature | None = None,
        arg: str = "items",
        workflow_id: str | None = None,
    ) -> Workflow:
        """``task`` once per ``chunk_size`` items (passed as its ``arg`` argument) and ``then``
        once after every chunk, in one call. The chunks are steps ``<task>[0]``, ``<task>[1]``...
        of one workflow, so the workflow's progress is the chunks' combined progress."""
        from conveyor.canvas import chunks

        return await self.enqueue_many_async(chunks(task, items, chunk_size, then, arg), workflow_id=workflow_id)

    enqueue_many = blocking(enqueue_many_async)
    chain = blocking(chain_async)
    group = blocking(group_async)
    fan_out = blocking(fan_out_async)
    # -- uploads (large inputs) ---------------------------------------------------------------

    @property
    def file_store(self) -> FileStore:
        """The result store, when it keeps uploads too (the built-in directory and S3 stores do)."""
        if not isinstance(self.result_store, FileStore):
            raise ConfigError("this app's result_store does not keep uploads; use a directory or an s3:// URL")
        return self.result_store

    async def upload_async(
        self,
        source: str | Path | BinaryIO | bytes,
        *,
        filename: str | None = None,
        content_type: str | None = None,
        tenant: str | None = None,
    ) -> str:
        """Store a file (a path, an open binary stream or bytes) as a job input; its ref
        (``upload:<id>``) goes into a job's arguments, and the task reads it with
        ``ctx.input_path(ref)`` or ``ctx.open_input(ref)``. Streamed, never held in memory whole."""
        return (await self.upload_info_async(source, filename=filename, content_type=content_type, tenant=tenant)).ref

    async def upload_info_async(
        self,
        source: str | Path | BinaryIO | bytes,
        *,
        filename: str | None = None,
        content_type: str | None = None,
        tenant: str | None = None,
    ) -> Upload:
        """Like ``upload_async``, returning the whole record (size, SHA-256, file name ...)."""
        store = self.file_store
        src = Path(source) if isinstance(source, str) else source
        return await asyncio.to_thread(
            lambda: store.create_upload(
                src, tenant=tenant or DEFAULT_TENANT, filename=filename, content_type=content_type
            )
        )

    upload = blocking(upload_async)
    upload_info = blocking(upload_info_async)

    # -- inspection and operator actions (sync twins declared from the async ones) --------------

    async def get_async(self, job_id: str, tenant: str | None = None) -> Job | None:
        """The job, or None when it does not exist (or belongs to another tenant)."""
        return await (await self.backend()).get(job_id, tenant)

    async def list_jobs_async(
        self,
        *,
        states: Iterable[JobState | str] = (),
        queue: str | None = None,
        task: str | None = None,
        tenant: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
        workflow: str | None = None,
    ) -> JobPage:
        """Jobs newest first, filtered (``workflow``: the steps of one workflow); pass
        ``page.next_cursor`` as ``cursor`` for the next page."""
        flt = JobFilter(tenant, tuple(JobState(s) for s in states), queue, task, limit, cursor, workflow)
        return await (await self.backend()).list_jobs(flt)

    async def cancel_async(self, job_id: str, tenant: str | None = None, reason: str = "canceled by request") -> Job:
        """Cancel a job that has not ended (its waiting dependents too); raises JobNotFound, InvalidTransition."""
        job = await (await self.backend()).cancel(CancelRequest(job_id, tenant, reason))
        self.telemetry.emit(JobEnded(job.id, job.task, "canceled"))
        return job

    async def redrive_async(
        self,
        job_ids: Iterable[str] = (),
        *,
        queue: str | None = None,
        task: str | None = None,
        tenant: str | None = None,
    ) -> int:
        """Move failed jobs back to queued (attempts reset): these ids, or every one matching queue/task."""
        return await (await self.backend()).redrive(RedriveRequest(tuple(job_ids), tenant, queue, task))

    async def queue_stats_async(self, tenant: str | None = None) -> list[QueueStats]:
        """Depth by state, oldest queued age and pause flag of every queue the engine knows."""
        return await (await self.backend()).queue_stats(tenant)

    async def queue_position_async(self, job_id: str) -> int | None:
        """How many jobs of its queue run before this one; None unless it is queued."""
        return await (await self.backend()).queue_position(job_id)

    async def events_async(self, job_id: str, after_seq: int = 0, limit: int = 1000) -> list[JobEvent]:
        """The job's history after ``after_seq`` (oldest first): resume from the last seq you saw."""
        return await (await self.backend()).events(EventsRequest(job_id, after_seq, limit))

    async def pause_queue_async(self, queue: str) -> None:
        """Stop workers from claiming jobs of ``queue``; submits are still accepted, running jobs finish."""
        await (await self.backend()).set_paused(PauseRequest(_queue_name(queue), True))

    async def resume_queue_async(self, queue: str) -> None:
        """Let workers claim from ``queue`` again."""
        await (await self.backend()).set_paused(PauseRequest(_queue_name(queue), False))

    async def workers_async(self) -> list[WorkerStatus]:
        """Every node in the engine's worker registry, judged alive or dead (``conveyor.fleet``)."""
        return await list_workers(await self.backend())

    async def migrate_async(self) -> list[str]:
        """Apply pending schema migrations on a connection of its own; the names applied."""
        backend = self._make_backend()
        try:
            return await backend.migrate()
        finally:
            await backend.close()

    # -- workflows (conveyor/workflows.py summarises; conveyor/batch.py plans batches) -----------

    async def submit_requests_async(self, requests: list[EnqueueRequest]) -> list[EnqueueResult]:
        """Enqueue prepared requests (``build_request``, ``batch.plan_batch``) in ONE engine call:
        one transaction, all or nothing; each answer says whether its job is new."""
        backend = await self.backend()
        results = await self.telemetry.timed("enqueue_many", backend.enqueue_many(list(requests)))
        self.telemetry.submitted([r.job for r in results], [r.created for r in results])
        return results

    async def workflow_jobs_async(self, workflow_id: str, tenant: str | None = None) -> list[Job]:
        """Every job of the workflow (oldest first) that ``tenant`` may see (None: every tenant)."""
        backend = await self.backend()
        jobs: list[Job] = []
        cursor: str | None = None
        while True:
            flt = JobFilter(tenant, (), None, None, WORKFLOW_PAGE, cursor, workflow=workflow_id)
            page = await backend.list_jobs(flt)
            jobs.extend(page.jobs)
            if page.next_cursor is None or not page.jobs:
                return sorted(jobs, key=lambda j: j.id)
            cursor = page.next_cursor

    async def workflow_async(self, workflow_id: str, tenant: str | None = None) -> WorkflowStatus | None:
        """The workflow's summary (steps, overall state, aggregate progress, failed steps), or
        None when it has no job ``tenant`` may see."""
        from conveyor.workflows import summarize

        jobs = await self.workflow_jobs_async(workflow_id, tenant)
        return summarize(workflow_id, jobs) if jobs else None

    async def cancel_workflow_async(
        self, workflow_id: str, tenant: str | None = None, reason: str = "workflow canceled by request"
    ) -> WorkflowStatus | None:
        """Cancel every unfinished step (their waiting dependents are canceled with them); the
        summary afterwards, or None when the workflow does not exist for ``tenant``."""
        jobs = await self.workflow_jobs_async(workflow_id, tenant)
        if not jobs:
            return None
        for job in jobs:
            if job.terminal:
                continue
            # ended meanwhile (a cascade of an earlier cancel, or it finished): nothing to do
            with contextlib.suppress(InvalidTransition, JobNotFound):
                await self.cancel_async(job.id, tenant, reason)
        return await self.workflow_async(workflow_id, tenant)

    submit_requests = blocking(submit_requests_async)
    workflow_jobs = blocking(workflow_jobs_async)
    workflow = blocking(workflow_async)
    cancel_workflow = blocking(cancel_workflow_async)

    get = blocking(get_async)
    list_jobs = blocking(list_jobs_async)
    cancel = blocking(cancel_async)
    redrive = blocking(redrive_async)
    queue_stats = blocking(queue_stats_async)
    queue_position = blocking(queue_position_async)
    events = blocking(events_async)
    pause_queue = blocking(pause_queue_async)
    resume_queue = blocking(resume_queue_async)
    workers = blocking(workers_async)
    migrate = blocking(migrate_async)


def _queue_name(queue: str) -> str:
    if not queue.strip():
        raise ConfigError("queue name must not be empty")
    return queue


def load_app(spec: str) -> Conveyor:
    """Import ``package.module:attribute`` and return the Conveyor app it names."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"--app must look like package.module:app, got {spec!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"cannot import {module_name!r}: {exc}") from None
    app = getattr(module, attr, None)
    if not isinstance(app, Conveyor):
        raise ConfigError(f"{spec!r} is not a Conveyor app")
    apply_queues_config(app)
    return app


def apply_queues_config(app: Conveyor) -> Conveyor:
    """Declare the queues of ``$CONVEYOR_QUEUES_CONFIG`` (set by ``--queues-config``) on ``app``.

    An environment variable, so every process that loads the app (a node's executors, the
    nodes ``serve`` starts) sees the same declaration as the command that was given the file.
    """
    path = os.environ.get(QUEUES_CONFIG_ENV)
    if path:
        app.declare_queues(load_queues_config(path))
    return app
