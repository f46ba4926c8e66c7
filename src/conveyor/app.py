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
import importlib
import os
import sys
import threading
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar, overload

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
from conveyor.errors import ConfigError, UnknownTask
from conveyor.storage import inputs
from conveyor.storage.store import FileStore, ResultStore, open_store
from conveyor.storage.uploads import Upload
from conveyor.task import CallOptions, Task, TaskOptions
from conveyor.telemetry import JobEnded, Telemetry
from conveyor.types import (
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_TENANT,
    Job,
    JobEvent,
    JobState,
    QueueConfig,
    QueueStats,
    RetryPolicy,
)

if TYPE_CHECKING:
    from conveyor.webhooks.config import WebhookEndpoint, WebhookSettings

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])
DEFAULT_URL = "sqlite:///var/conveyor.db"


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
    ``webhooks`` (endpoints or a ``WebhookSettings``) announces jobs that end, see docs/webhooks.md.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        queues: Iterable[QueueConfig] = (),
        result_store: ResultStore | str | None = None,
        idempotency_ttl: float = 24 * 3600.0,
        webhooks: WebhookSettings | Iterable[WebhookEndpoint] | None = None,
    ) -> None:
        self.url = url or os.environ.get("CONVEYOR_URL") or DEFAULT_URL
        self.tasks: dict[str, Task] = {}
        self.queues: dict[str, QueueConfig] = {q.name: q for q in queues}
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
        self.webhooks: WebhookSettings | None = None
        if webhooks is not None:
            from conveyor.webhooks.config import WebhookSettings as Settings
            from conveyor.webhooks.deliver import install

            self.webhooks = Settings.of(webhooks)
            install(self, self.webhooks)

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
    ) -> Task | Callable[[F], Task]:
        """Register a function as a task: ``@app.task`` or ``@app.task(queue="reports", ...)``."""
        if max_attempts < 1:
            raise ConfigError("max_attempts must be at least 1")
        if timeout is not None and timeout <= 0:
            raise ConfigError("timeout must be positive seconds")
        options = TaskOptions(queue, max_attempts, timeout, retry or RetryPolicy(), priority)

        def register(func: F) -> Task:
            task_name = name or f"{func.__module__}.{func.__qualname__}"
            if task_name in self.tasks:
                raise ConfigError(f"task {task_name!r} is registered twice")
            task = Task(self, func, task_name, options, args_model)
            self.tasks[task_name] = task
            return task

        return register(fn) if fn is not None else register

    def get_task(self, name: str) -> Task:
        try:
            return self.tasks[name]
        except KeyError:
            raise UnknownTask(f"unknown task {name!r}") from None

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

        async def run() -> T:
            return await make()

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
        queue = opts.queue or task.options.queue
        return EnqueueRequest(
            task=task.name,
            args=clean,
            queue=queue,
            tenant=opts.tenant or DEFAULT_TENANT,
            priority=task.options.priority if opts.priority is None else opts.priority,
            max_attempts=opts.max_attempts or task.options.max_attempts,
            timeout=opts.timeout or task.options.timeout,
            retry=task.options.retry,
            delay=opts.delay,
            run_at=opts.run_at,
            idempotency_key=opts.idempotency_key,
            idempotency_ttl=self.idempotency_ttl,
            depends_on=tuple(opts.depends_on),
            max_depth=self.queue_config(queue).max_depth,
            workflow_id=opts.workflow_id,
            step=opts.step,
            on_dependency_failure=opts.on_dependency_failure,
            quorum=opts.quorum,
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
        result = await self.telemetry.timed("enqueue", backend.enqueue(request))
        self.telemetry.submitted([result.job], [result.created])
        await inputs.link_refs(self.result_store, uploads, result.job.id)
        return result

    async def enqueue_async(
        self, task: str | Task, args: dict[str, Any] | None = None, options: CallOptions | None = None
    ) -> Job:
        """Enqueue a job of ``task`` with ``args``; the job as stored (or the original, on a replay)."""
        return (await self.submit_async(task, args, options)).job

    submit = blocking(submit_async)
    enqueue = blocking(enqueue_async)

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
    ) -> JobPage:
        """Jobs newest first, filtered; pass ``page.next_cursor`` as ``cursor`` for the next page."""
        flt = JobFilter(tenant, tuple(JobState(s) for s in states), queue, task, limit, cursor)
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

    async def migrate_async(self) -> list[str]:
        """Apply pending schema migrations on a connection of its own; the names applied."""
        backend = self._make_backend()
        try:
            return await backend.migrate()
        finally:
            await backend.close()

    get = blocking(get_async)
    list_jobs = blocking(list_jobs_async)
    cancel = blocking(cancel_async)
    redrive = blocking(redrive_async)
    queue_stats = blocking(queue_stats_async)
    queue_position = blocking(queue_position_async)
    events = blocking(events_async)
    pause_queue = blocking(pause_queue_async)
    resume_queue = blocking(resume_queue_async)
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
    return app
