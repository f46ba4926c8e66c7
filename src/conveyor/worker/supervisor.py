"""The worker node's supervisor: claims jobs, holds their leases, records their outcomes.

One asyncio loop does all of it. Claims take as many jobs as there is free capacity, in one
backend call; when nothing is claimable the loop sleeps in ``backend.wait_for_work`` (woken by
the engine's notification) instead of polling. One heartbeat call per interval extends every
held lease; a job whose lease comes back ``canceled`` or ``lost`` is stopped (its executor is
killed) and never completed. Only the supervisor talks to the engine about a job's outcome,
always with the job's lease token, so a stale node is fenced off by the engine. Successes are
acknowledged in batches (``acks.CompletionBatcher``: one ``complete_many`` transaction for all
the jobs that finished meanwhile).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from conveyor.app import Conveyor
from conveyor.backend.protocol import (
    Backend,
    ClaimRequest,
    CompleteRequest,
    FailRequest,
    HeartbeatRequest,
    ReleaseRequest,
)
from conveyor.errors import BackendUnavailable, ConveyorError
from conveyor.task import Task
from conveyor.telemetry import JobClaimed, JobEnded
from conveyor.types import JobState
from conveyor.worker.acks import CompletionBatcher
from conveyor.worker.async_exec import run_async_task
from conveyor.worker.autoscaler import Autoscaler
from conveyor.worker.codec import Outcome, error_dict
from conveyor.worker.config import WorkerConfig
from conveyor.worker.jobrun import JobRun, StopReason
from conveyor.worker.logs import log
from conveyor.worker.maintenance import Maintenance
from conveyor.worker.pool import ExecutorPool

T = TypeVar("T")
ENGINE_RETRY = 0.5
CLAIM_LINGER = 0.005
"""Longest wait for more slots to free up before claiming a partial batch (see ``_gather_capacity``)."""


async def first_of(*aws: Coroutine[Any, Any, Any]) -> None:
    """Wait until the first of several coroutines finishes; cancel the others."""
    tasks = [asyncio.ensure_future(a) for a in aws]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class Worker:
    """One worker node. ``await Worker(app, config).run()`` returns the process exit code."""

    def __init__(self, app: Conveyor, config: WorkerConfig) -> None:
        self.app = app
        self.config = config.validate()
        self.held: dict[str, JobRun] = {}
        self.pool = ExecutorPool(config.app_spec, config.concurrency, self._pool_changed)
        self.has_async = any(t.is_async for t in app.tasks.values())
        self.has_sync = not self.has_async or any(not t.is_async for t in app.tasks.values())
        self._sync_in_flight = 0
        self._async_in_flight = 0
        self._settling = 0
        """Jobs whose task returned and whose outcome is being recorded (their slot is free again)."""
        self._async_slots = asyncio.Semaphore(config.async_concurrency)
        self._capacity = asyncio.Event()
        self._draining = asyncio.Event()
        self._fast_stop = asyncio.Event()
        self._job_tasks: set[asyncio.Task[None]] = set()
        self._backend: Backend | None = None
        self._acks: CompletionBatcher | None = None

    @property
    def backend(self) -> Backend:
        assert self._backend is not None, "the worker is not running"
        return self._backend

    # -- capacity -------------------------------------------------------------------------------

    def free_capacity(self) -> int:
        """How many more jobs to claim now.

        A claim cannot ask for sync or async jobs separately, so an app with both kinds
        claims free executors plus free async slots, but never lets more sync jobs wait for
        an executor than the pool has (a prefetch of at most one job per executor): a node
        does not hoard work other nodes could run.
        """
        free = self._slot_capacity(self._sync_in_flight, self._async_in_flight)
        return max(0, free - max(0, self._settling - self._settle_allowance()))

    def _slot_capacity(self, sync_in_flight: int, async_in_flight: int) -> int:
        if self.pool.failing and self.has_sync:
            # Executors cannot start. A claim cannot ask for async jobs only, so a node that
            # kept claiming would take sync jobs just to hand them back, over and over, while
            # healthy nodes could run them: stop claiming until the pool boots again.
            return 0
        sync_free = self.pool.target - sync_in_flight
        if not self.has_async:
            return sync_free
        async_free = self.config.async_concurrency - async_in_flight
        if not self.has_sync:
            return async_free
        return min(sync_free + async_free, 2 * self.pool.target - sync_in_flight)

    def _settle_allowance(self) -> int:
        """How many finished jobs may wait for their outcome to be written while new ones run.

        A job's slot is free as soon as its task returns, so the next claim overlaps with the
        write of the previous outcomes (one round trip saved per batch). At most one full set
        of slots may be settling: a slow engine cannot make the node hoard leases.
        """
        return max(1, self._slot_capacity(0, 0))

    def _pool_changed(self) -> None:
        """Executors stopped (or resumed) booting: hand back sync jobs that cannot start."""
        self._capacity.set()
        if not self.pool.failing:
            return
        for run in list(self.held.values()):
            task = self.app.tasks.get(run.job.task)
            if not run.executing and (task is None or not task.is_async) and run.stop("shutdown"):
                log("job.handing_back", logging.WARNING, id=run.job.id, reason="executors fail to start")

    def busy_executors(self) -> int:
        return self._sync_in_flight

    # -- the node's life ----------------------------------------------------------------------

    async def run(self) -> int:
        cfg = self.config
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_shutdown, sig)
        backend = await self._connect_engine()
        if backend is None:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
            log("worker.stop", id=cfg.worker_id, reason="stopped before the engine was reachable")
            return 0
        self._backend = backend
        self._acks = CompletionBatcher(
            lambda reqs: self.app.telemetry.timed("complete_many", backend.complete_many(reqs)), self._engine
        )
        self.pool.start()
        log(
            "worker.start",
            id=cfg.worker_id,
            queues=",".join(cfg.queues),
            concurrency=cfg.concurrency,
            max_concurrency=cfg.max_executors,
            lease=cfg.lease,
            heartbeat=cfg.heartbeat_interval,
        )
        background = [
            asyncio.ensure_future(self._heartbeat_loop()),
            asyncio.ensure_future(Maintenance(self.backend, cfg.maintenance, self.app).run()),
        ]
        if cfg.max_executors > cfg.min_executors:
            scaler = Autoscaler(
                self.backend,
                self.pool,
                cfg.queues,
                cfg.min_executors,
                cfg.max_executors,
                cfg.autoscale,
                self.busy_executors,
                self._capacity.set,
            )
            background.append(asyncio.ensure_future(scaler.run()))
        try:
            await self._claim_loop()
            await self._drain()
        finally:
            if self._acks is not None:
                await self._acks.close()  # every outcome handed in is written before the node exits
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
            await self.pool.close()
            await self.app.aclose()
        log("worker.stop", id=cfg.worker_id)
        return 0

    async def _connect_engine(self) -> Backend | None:
        """Open the engine, waiting (with capped backoff) while it is unreachable.

        A node started before its database (a reboot, a deploy racing a failover) must come up
        by itself once the engine is back, not exit and wait for an operator. Returns None when
        a shutdown was requested while waiting.
        """
        delay = 0.5
        while not self._draining.is_set():
            try:
                return await self.app.backend()
            except BackendUnavailable as exc:
                log("worker.engine_unavailable", logging.WARNING, error=str(exc), retry_in=delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._draining.wait(), timeout=delay)
            delay = min(delay * 2, 10.0)
        return None

    def request_shutdown(self, sig: signal.Signals | None = None) -> None:
        """First call: drain (stop claiming, finish within --grace). Second: stop now."""
        name = sig.name if sig is not None else "request"
        if self._draining.is_set():
            log("worker.shutdown_now", signal=name)
            self._fast_stop.set()
        else:
            log("worker.draining", signal=name, running=len(self.held), grace=self.config.grace)
            self._draining.set()

    # -- claiming -------------------------------------------------------------------------------

    async def _claim_loop(self) -> None:
        cfg = self.config
        while not self._draining.is_set():
            free = self.free_capacity()
            if free <= 0:
                self._capacity.clear()
                await first_of(self._capacity.wait(), self._draining.wait())
                continue
            free = await self._gather_capacity(free)
            try:
                jobs = await self.app.telemetry.timed(
                    "claim", self.backend.claim(ClaimRequest(cfg.worker_id, cfg.queues, free, cfg.lease))
                )
            except Exception as exc:  # engine hiccup: back off, never crash the node
                log("worker.claim_error", logging.WARNING, error=f"{type(exc).__name__}: {exc}")
                await first_of(asyncio.sleep(ENGINE_RETRY), self._draining.wait())
                continue
            for job in jobs:
                self.app.telemetry.emit(JobClaimed(job))
                self._start(JobRun(job))
            if jobs:
                continue
            if cfg.burst:
                if not self.held:
                    log("worker.burst_done", id=cfg.worker_id)
                    self._draining.set()
                    return
                self._capacity.clear()
                await first_of(self._capacity.wait(), self._draining.wait(), asyncio.sleep(cfg.poll_interval))
                continue
            await first_of(self.backend.wait_for_work(cfg.queues, cfg.poll_interval), self._draining.wait())

    async def _gather_capacity(self, free: int) -> int:
        """Let a few more slots free up (at most ``CLAIM_LINGER``) before claiming a small batch.

        Claiming as soon as one slot frees makes a busy node settle into claims (and then
        acknowledgements) of one or two jobs: a round trip and a commit per job or two. Waiting
        until half the slots are free, or a few milliseconds, claims in real batches. An idle
        node (nothing executing) claims at once, so pickup latency does not change.
        """
        want = max(1, self._settle_allowance() // 2)
        if free >= want or self._sync_in_flight + self._async_in_flight == 0:
            return free
        loop = asyncio.get_running_loop()
        deadline = loop.time() + CLAIM_LINGER
        while free < want and not self._draining.is_set():
            remaining = deadline - loop.time()
            if remaining <= 0 or self._sync_in_flight + self._async_in_flight == 0:
                break
            self._capacity.clear()
            await first_of(self._capacity.wait(), self._draining.wait(), asyncio.sleep(remaining))
            free = self.free_capacity()
        return free

    def _start(self, run: JobRun) -> None:
        task = self.app.tasks.get(run.job.task)
        is_async = task is not None and task.is_async
        self.held[run.job.id] = run
        if is_async:
            self._async_in_flight += 1
        else:
            self._sync_in_flight += 1
        job_task = asyncio.ensure_future(self._execute(run, task, is_async))
        self._job_tasks.add(job_task)
        job_task.add_done_callback(self._job_tasks.discard)

    # -- running one job ------------------------------------------------------------------------

    async def _execute(self, run: JobRun, task: Task | None, is_async: bool) -> None:
        job = run.job
        slot_held = True

        def free_slot() -> None:
            nonlocal slot_held
            if slot_held:
                slot_held = False
                if is_async:
                    self._async_in_flight -= 1
                else:
                    self._sync_in_flight -= 1
                self._capacity.set()

        settling = False
        try:
            if task is None:
                msg = f"task {job.task!r} is not registered in this worker's app"
                outcome = Outcome("error", error=error_dict("UnknownTask", msg))
            elif is_async:
                outcome = await self._run_async(run, task)
            else:
                outcome = await self._run_sync(run)
            # The task is over: its slot may take the next job while the outcome is written.
            # The job stays in ``held`` (its lease is still heartbeaten) until it is recorded.
            # A stopped job (handed back, canceled) keeps its slot until then, as before.
            if outcome.kind != "stopped" and run.stop_reason is None:
                settling = True
                self._settling += 1
                free_slot()
            await self._settle(run, outcome)
        except Exception:
            logging.getLogger("conveyor.worker").exception("job %s: supervisor error", job.id)
        finally:
            self.held.pop(job.id, None)
            if settling:
                self._settling -= 1
            free_slot()
            self._capacity.set()

    async def _run_sync(self, run: JobRun) -> Outcome:
        acquire = asyncio.ensure_future(self.pool.acquire())
        stop_wait = asyncio.ensure_future(run.stopped.wait())
        await asyncio.wait({acquire, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
        stop_wait.cancel()
        if not acquire.done():
            acquire.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await acquire
            return Outcome("stopped")
        executor = acquire.result()
        if run.stopped.is_set():  # stopped just as an executor came free: do not start it
            self.pool.release(executor)
            return Outcome("stopped")
        self._begin(run)
        try:
            return await executor.run(run.job, run.stopped, lambda: run.stop_reason, self.config.stop_grace)
        finally:
            self.pool.release(executor)

    async def _run_async(self, run: JobRun, task: Task) -> Outcome:
        acquire = asyncio.ensure_future(self._async_slots.acquire())
        stop_wait = asyncio.ensure_future(run.stopped.wait())
        await asyncio.wait({acquire, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
        stop_wait.cancel()
        if not acquire.done():
            acquire.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await acquire
            if not acquire.cancelled():
                self._async_slots.release()
            return Outcome("stopped")
        self._begin(run)
        try:
            return await run_async_task(self.app, task, run, self.config.stop_grace)
        finally:
            self._async_slots.release()

    def _begin(self, run: JobRun) -> None:
        run.executing = True
        run.started = time.monotonic()
        job = run.job
        log("job.start", id=job.id, task=job.task, queue=job.queue, attempt=job.attempts)

    # -- recording outcomes ---------------------------------------------------------------------

    async def _settle(self, run: JobRun, outcome: Outcome) -> None:
        job = run.job
        run.settling = True
        base: dict[str, Any] = {"id": job.id, "task": job.task, "attempt": job.attempts, "duration": run.elapsed}
        if outcome.kind == "stopped" or run.context_stop_reason() is not None:
            if run.stop_reason == "shutdown":
                released = await self._engine(lambda: self.backend.release(ReleaseRequest(job.id, run.lease.token)))
                log("job.released" if released else "job.release_refused", **base)
            else:
                log("job.stopped", logging.WARNING, reason=run.stop_reason, **base)
            return
        if outcome.kind == "succeeded":
            assert self._acks is not None
            if await self._acks.complete(CompleteRequest(job.id, run.lease.token, outcome.result)):
                self.app.telemetry.emit(JobEnded(job.id, job.task, "succeeded", run.elapsed))
                log("job.finish", outcome="succeeded", **base)
            else:
                log("job.refused", logging.WARNING, outcome="succeeded", reason="lease lost", **base)
            return
        error = outcome.error or error_dict("Error", "unknown failure")
        retry_delay = job.retry.delay(job.attempts) if outcome.retryable and job.attempts < job.max_attempts else None
        fail = FailRequest(job.id, run.lease.token, error, retry_delay)
        state = await self._engine(lambda: self.app.telemetry.timed("fail", self.backend.fail(fail)))
        if state is None:
            log("job.refused", logging.WARNING, outcome=outcome.kind, reason="lease lost", **base)
            return
        self.app.telemetry.emit(
            JobEnded(job.id, job.task, "failed" if state is JobState.FAILED else "retried", run.elapsed)
        )
        level = logging.ERROR if state is JobState.FAILED else logging.WARNING
        fields: dict[str, Any] = {
            **base,
            "error": error.get("type"),
            "message": error.get("message"),
            "retry_in": retry_delay,
        }
        log("job.finish", level, outcome="failed" if state is JobState.FAILED else "retry", **fields)

    async def _engine(self, call: Callable[[], Awaitable[T]]) -> T | None:
        """Retry an outcome write while the engine is briefly unavailable (up to one lease).

        Giving up is safe: the lease then expires and the reaper requeues the job.
        """
        deadline = asyncio.get_running_loop().time() + self.config.lease
        while True:
            try:
                return await call()
            except ConveyorError as exc:
                if asyncio.get_running_loop().time() > deadline:
                    log("worker.engine_error", logging.ERROR, error=str(exc))
                    return None
                await asyncio.sleep(ENGINE_RETRY)

    # -- leases -----------------------------------------------------------------------------------

    async def _heartbeat_loop(self) -> None:
        cfg = self.config
        while True:
            await asyncio.sleep(cfg.heartbeat_interval)
            runs = list(self.held.values())  # settling ones too: recording an outcome may take a while
            if not runs:
                continue
            try:
                beat = self.backend.heartbeat(HeartbeatRequest(tuple(r.lease for r in runs), cfg.lease))
                statuses = await self.app.telemetry.timed("heartbeat", beat)
            except Exception as exc:
                log("worker.heartbeat_error", logging.WARNING, error=f"{type(exc).__name__}: {exc}", jobs=len(runs))
                continue
            for run in runs:
                status = statuses.get(run.job.id, "ok")
                if status == "ok":
                    continue
                reason: StopReason = "canceled" if status == "canceled" else "lease_lost"
                if run.stop(reason):
                    log("job.stopping", logging.WARNING, id=run.job.id, task=run.job.task, reason=reason)

    # -- shutdown ---------------------------------------------------------------------------------

    async def _drain(self) -> None:
        """Let running jobs finish within the grace period, then kill and release the rest."""
        for run in list(self.held.values()):
            if not run.executing:
                run.stop("shutdown")  # never started: hand it back at once
        if self.held and not self._fast_stop.is_set():
            await first_of(self._all_done(), self._fast_stop.wait(), asyncio.sleep(self.config.grace))
        for run in list(self.held.values()):
            run.stop("shutdown")
        if self._job_tasks:
            await asyncio.wait(set(self._job_tasks), timeout=self.config.lease + 10)

    async def _all_done(self) -> None:
        while self._job_tasks:
            await asyncio.wait(set(self._job_tasks))
