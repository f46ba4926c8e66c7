"""Running claimed jobs: one asyncio task per job, from its slot to its recorded outcome.

A sync job waits for an executor process, an async job for an async slot; either wait ends
early if the job is stopped. Once the task returns, its slot takes the next job while the
outcome is written (``Capacity.task_returned``); the job stays ``held`` (so its lease keeps
being heartbeaten) until the outcome is recorded.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from conveyor.app import Conveyor
from conveyor.dependencies import fetch_dependencies
from conveyor.resources import ResourceGate
from conveyor.task import Task
from conveyor.types import Job
from conveyor.worker.aio import acquire_unless_stopped
from conveyor.worker.async_exec import run_async_task
from conveyor.worker.capacity import Capacity, SlotKind
from conveyor.worker.codec import Outcome, error_dict
from conveyor.worker.jobrun import JobRun
from conveyor.worker.logs import log
from conveyor.worker.outcomes import OutcomeRecorder
from conveyor.worker.overrun import arm, disarm
from conveyor.worker.pool import ExecutorPool
from conveyor.worker.stop import StopReason


class JobRunner:
    """Starts claimed jobs and tracks the ones whose lease this node holds (``held``)."""

    def __init__(
        self,
        app: Conveyor,
        pool: ExecutorPool,
        capacity: Capacity,
        recorder: OutcomeRecorder,
        async_concurrency: int,
        stop_grace: float,
        on_capacity: Callable[[], None],
        gate: ResourceGate | None = None,
    ) -> None:
        self.app = app
        self.pool = pool
        self.capacity = capacity
        self.recorder = recorder
        self.stop_grace = stop_grace
        self._on_capacity = on_capacity
        self.gate = gate
        """Resources held by jobs of resource queues, given back when their outcome is recorded."""
        """Called whenever a slot may have come free: wakes the claim loop."""
        self.held: dict[str, JobRun] = {}
        """Every job whose lease this node holds, from claim until its outcome is recorded."""
        self.tasks: set[asyncio.Task[None]] = set()
        self._async_slots = asyncio.Semaphore(async_concurrency)

    def kind_of(self, job: Job) -> SlotKind:
        task = self.app.tasks.get(job.task)
        return SlotKind.ASYNC if task is not None and task.is_async else SlotKind.SYNC

    def start(self, job: Job) -> None:
        """Take a slot for a freshly claimed job and run it in its own asyncio task."""
        run = JobRun(job)
        kind = self.kind_of(job)
        self.held[job.id] = run
        self.capacity.started(kind)
        job_task = asyncio.ensure_future(self._execute(run, kind))
        self.tasks.add(job_task)
        job_task.add_done_callback(self.tasks.discard)

    def stop_all(self, reason: StopReason, *, waiting_only: bool = False) -> None:
        """Stop every held job (or only those whose task has not started yet)."""
        for run in list(self.held.values()):
            if not (waiting_only and run.executing):
                run.stop(reason)

    def hand_back_unstartable(self) -> None:
        """Executors fail to start: hand back the sync jobs still waiting for one."""
        for run in list(self.held.values()):
            if not run.executing and self.kind_of(run.job) is SlotKind.SYNC and run.stop(StopReason.SHUTDOWN):
                log("job.handing_back", logging.WARNING, id=run.job.id, reason="executors fail to start")

    async def all_done(self) -> None:
        """Wait until every job task has ended (including jobs started meanwhile)."""
        while self.tasks:
            await asyncio.wait(set(self.tasks))

    # -- one job ----------------------------------------------------------------------------------

    async def _execute(self, run: JobRun, kind: SlotKind) -> None:
        returned = False
        try:
            outcome = await self._attempt(run, kind)
            # A stopped job (handed back, canceled) keeps its slot until it is recorded.
            if outcome.kind != "stopped" and run.stop_reason is None:
                self.capacity.task_returned(kind)
                returned = True
                self._on_capacity()
            await self.recorder.record(run, outcome)
        except Exception:
            logging.getLogger("conveyor.worker").exception("job %s: supervisor error", run.job.id)
        finally:
            disarm(run)
            self.held.pop(run.job.id, None)
            if self.gate is not None:
                self.gate.release(run.job)
            try:
                if returned:
                    self.capacity.settled()
                else:
                    self.capacity.ended(kind)
            finally:
                self._on_capacity()

    async def _attempt(self, run: JobRun, kind: SlotKind) -> Outcome:
        task = self.app.tasks.get(run.job.task)
        if task is None:
            msg = f"task {run.job.task!r} is not registered in this worker's app"
            return Outcome("error", error=error_dict("UnknownTask", msg))
        if run.job.depends_on:
            try:
                run.dependencies = await fetch_dependencies(await self.app.backend(), run.job.depends_on)
            except Exception as exc:  # the engine is briefly unreachable: a retry will read them
                msg = f"could not read the job's dependencies: {type(exc).__name__}: {exc}"
                return Outcome("error", error=error_dict("DependenciesUnavailable", msg))
        if kind is SlotKind.ASYNC:
            return await self._run_async(run, task)
        return await self._run_sync(run)

    async def _run_sync(self, run: JobRun) -> Outcome:
        executor = await acquire_unless_stopped(self.pool.acquire(), run.stopped, self.pool.release)
        if executor is None:
            return Outcome("stopped")
        self._begin(run)
        try:
            return await executor.run(run.job, run.stopped, lambda: run.stop_reason, self.stop_grace, run.dependencies)
        finally:
            self.pool.release(executor)

    async def _run_async(self, run: JobRun, task: Task) -> Outcome:
        slots = self._async_slots
        if not await acquire_unless_stopped(slots.acquire(), run.stopped, lambda _: slots.release()):
            return Outcome("stopped")
        self._begin(run)
        try:
            return await run_async_task(self.app, task, run, self.stop_grace)
        finally:
            slots.release()

    def _begin(self, run: JobRun) -> None:
        run.executing = True
        run.started = time.monotonic()
        arm(self.app.queue_config(run.job.queue), run)
        job = run.job
        log("job.start", logging.DEBUG, id=job.id, task=job.task, queue=job.queue, attempt=job.attempts)
