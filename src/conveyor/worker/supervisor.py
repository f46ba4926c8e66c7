"""The worker node's supervisor: wires the parts of a node together and runs its life.

One asyncio loop does all of it. The parts, one job each:

- ``claiming.ClaimLoop`` claims as many jobs as there is room for (``capacity.Capacity``, a
  pure bookkeeping object), in one backend call, and sleeps in ``backend.wait_for_work``
  when nothing is claimable.
- ``execution.JobRunner`` runs each job (an executor process for a sync task, the event loop
  for an async one) and tracks the jobs whose lease the node holds.
- ``outcomes.OutcomeRecorder`` is the only part that tells the engine how a job ended, always
  with its lease token, so a stale node is fenced off; successes are batched
  (``acks.CompletionBatcher``).
- ``heartbeats.heartbeat_loop`` extends every held lease with one call per interval and stops
  jobs the engine reports ``canceled`` or ``lost``.
- ``shutdown.Shutdown`` drains on the first signal and stops at once on the second.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from conveyor.app import Conveyor
from conveyor.backend.protocol import Backend
from conveyor.errors import BackendUnavailable
from conveyor.resources import ResourceGate, served_queues
from conveyor.worker.autoscaler import Autoscaler
from conveyor.worker.capacity import Capacity
from conveyor.worker.claiming import ClaimLoop
from conveyor.worker.config import WorkerConfig
from conveyor.worker.execution import JobRunner
from conveyor.worker.heartbeats import heartbeat_loop
from conveyor.worker.logs import log
from conveyor.worker.maintenance import Maintenance
from conveyor.worker.outcomes import OutcomeRecorder
from conveyor.worker.pool import ExecutorPool
from conveyor.worker.registry import NodeRegistry
from conveyor.worker.shutdown import SIGNALS, Shutdown
from conveyor.worker.summary import Summary


def serve_metrics(host: str, port: int) -> None:
    """This node's counters on ``/metrics`` (a standalone node's finished jobs, run times and
    failures never reach the API's ``/metrics``: scrape every node, or use multiprocess mode)."""
    from prometheus_client import start_http_server

    from conveyor.metrics import registry

    start_http_server(port, addr=host, registry=registry())
    log("worker.metrics", address=f"http://{host}:{port}/metrics")


class Worker:
    """One worker node. ``await Worker(app, config).run()`` returns the process exit code."""

    def __init__(self, app: Conveyor, config: WorkerConfig) -> None:
        self.app = app
        self.config = config.validate()
        self.capacity = Capacity.for_tasks(app.tasks.values(), config.concurrency, config.async_concurrency)
        # an app with only async tasks runs them all in this event loop: no executor process at all
        executors = config.concurrency if self.capacity.has_sync else 0
        self.pool = ExecutorPool(config.app_spec, executors, self._pool_changed)
        self.capacity.pool_changed(self.pool.target, False)
        self.shutdown = Shutdown()
        self._capacity_changed = asyncio.Event()
        self._runner: JobRunner | None = None

    def busy_executors(self) -> int:
        """Sync jobs running or waiting for an executor (what the autoscaler sizes the pool by)."""
        return self.capacity.sync_in_flight

    def _pool_changed(self) -> None:
        """The pool was resized, or stopped (or resumed) booting: hand back sync jobs that cannot start."""
        self.capacity.pool_changed(self.pool.target, self.pool.failing)
        self._capacity_changed.set()
        if self.pool.failing and self._runner is not None:
            self._runner.hand_back_unstartable()

    def request_shutdown(self, sig: signal.Signals | None = None) -> None:
        """First call: drain (stop claiming, finish within --grace). Second: stop now."""
        running = len(self._runner.held) if self._runner is not None else 0
        self.shutdown.request(sig, running, self.config.grace)

    # -- the node's life ----------------------------------------------------------------------

    async def run(self) -> int:
        cfg = self.config
        loop = asyncio.get_running_loop()
        for sig in SIGNALS:
            loop.add_signal_handler(sig, self.request_shutdown, sig)
        backend = await self._connect_engine()
        if backend is None:
            for sig in SIGNALS:
                loop.remove_signal_handler(sig)
            log("worker.stop", id=cfg.worker_id, reason="stopped before the engine was reachable")
            return 0
        work_hint = asyncio.Event()
        recorder = OutcomeRecorder(backend, cfg.lease, self.app.telemetry, work_hint.set)
        gate = ResourceGate(cfg.resources, served_queues(cfg.queues, cfg.resources, self.app.resource_queues()))
        self._runner = runner = JobRunner(
            self.app,
            self.pool,
            self.capacity,
            recorder,
            cfg.async_concurrency,
            cfg.stop_grace,
            self._capacity_changed.set,
            gate,
        )
        claims = ClaimLoop(
            backend,
            cfg,
            self.capacity,
            runner,
            self._capacity_changed,
            self.shutdown.draining,
            self.app.telemetry,
            work_hint,
            gate,
        )
        summary = Summary(self.app.telemetry, cfg.worker_id, cfg.summary_interval)
        registry = NodeRegistry(backend, cfg.worker_id, cfg.registry_interval, self._node_info)
        if cfg.metrics_port is not None:
            serve_metrics(cfg.metrics_host, cfg.metrics_port)
        self.pool.start()
        log(
            "worker.start",
            id=cfg.worker_id,
            queues=",".join(cfg.queues + gate.queues),
            concurrency=cfg.concurrency,
            max_concurrency=cfg.max_executors,
            lease=cfg.lease,
            heartbeat=cfg.heartbeat_interval,
        )
        background = [
            asyncio.ensure_future(
                heartbeat_loop(backend, runner.held, cfg.heartbeat_interval, cfg.lease, self.app.telemetry)
            ),
            asyncio.ensure_future(Maintenance(backend, cfg.maintenance, self.app).run()),
            asyncio.ensure_future(summary.run()),
            asyncio.ensure_future(registry.run()),
        ]
        if cfg.max_executors > cfg.min_executors and self.capacity.has_sync:
            scaler = Autoscaler(
                backend,
                self.pool,
                cfg.queues,
                cfg.min_executors,
                cfg.max_executors,
                cfg.autoscale,
                self.busy_executors,
                self._pool_changed,
            )
            background.append(asyncio.ensure_future(scaler.run()))
        try:
            await claims.run()
            await self.shutdown.drain(runner, cfg.grace, patience=cfg.lease + 10)
        finally:
            await recorder.close()  # every outcome handed in is written before the node exits
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            await registry.leave()
            for sig in SIGNALS:
                loop.remove_signal_handler(sig)
            await self.pool.close()
            await self.app.aclose()
            summary.close()
        log("worker.stop", id=cfg.worker_id)
        return 0

    def _node_info(self) -> dict[str, object]:
        """The changing part of the node's registry entry (``worker.registry``)."""
        cfg = self.config
        held = list(self._runner.held) if self._runner is not None else []
        return {
            "queues": list(cfg.queues),
            "app": cfg.app_spec,
            "state": "draining" if self.shutdown.draining.is_set() else "running",
            "executors": self.pool.target,
            "max_executors": cfg.max_executors,
            "async_concurrency": cfg.async_concurrency,
            "in_flight": len(held),
            "jobs": held[:20],
            "metrics_port": cfg.metrics_port,
        }

    async def _connect_engine(self) -> Backend | None:
        """Open the engine, waiting (with capped backoff) while it is unreachable.

        A node started before its database (a reboot, a deploy racing a failover) must come up
        by itself once the engine is back, not exit and wait for an operator. Returns None when
        a shutdown was requested while waiting.
        """
        delay = 0.5
        draining = self.shutdown.draining
        while not draining.is_set():
            try:
                return await self.app.backend()
            except BackendUnavailable as exc:
                log("worker.engine_unavailable", logging.WARNING, error=str(exc), retry_in=delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(draining.wait(), timeout=delay)
            delay = min(delay * 2, 10.0)
        return None
