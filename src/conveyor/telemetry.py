"""Prometheus metrics for every backend call, in one place (DESIGN §3: not inside each engine).

``instrument(backend)`` wraps an engine so each coroutine method is timed and its errors are
counted by operation, and so the outcomes that pass through it (claims, completions, failures,
cancels, submits) feed the job counters and the run-duration histogram. ``Conveyor._make_backend``
applies it to every engine it creates, so the worker, the API and the CLI are all measured.

Several processes (``conveyor serve --workers N``) share one view when
``PROMETHEUS_MULTIPROC_DIR`` is set before this module is imported: ``registry()`` then
aggregates the files every process writes (prometheus-client's multiprocess mode).
"""

from __future__ import annotations

import inspect
import os
import time
from collections.abc import Callable
from typing import Any, cast

from prometheus_client import CollectorRegistry, Counter, Histogram, multiprocess
from prometheus_client import registry as prom_registry

from conveyor.backend.protocol import Backend, CancelRequest, ClaimRequest, CompleteRequest, FailRequest, ReleaseRequest
from conveyor.types import JobState

RUN_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
CALL_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

BACKEND_CALL_SECONDS = Histogram(
    "conveyor_backend_call_seconds", "Time spent in one engine operation", ["operation"], buckets=CALL_BUCKETS
)
BACKEND_ERRORS = Counter(
    "conveyor_backend_errors_total", "Engine operations that raised, by error type", ["operation", "error"]
)
JOBS_SUBMITTED = Counter("conveyor_jobs_submitted_total", "Jobs stored by enqueue (not idempotent replays)", ["task"])
JOBS_CLAIMED = Counter("conveyor_jobs_claimed_total", "Jobs handed to a worker (one per attempt)", ["task"])
JOBS_FINISHED = Counter(
    "conveyor_jobs_finished_total",
    "Attempts that ended, by outcome: succeeded, failed (dead letter), retried, canceled",
    ["task", "outcome"],
)
RUN_SECONDS = Histogram(
    "conveyor_job_run_seconds", "Wall time of one attempt, claim to end", ["task"], buckets=RUN_BUCKETS
)
SUBMIT_SECONDS = Histogram(
    "conveyor_submit_seconds", "Latency of POST /v1/jobs as seen by the API, by HTTP status", ["status"]
)
HTTP_REQUESTS = Counter("conveyor_http_requests_total", "HTTP requests served", ["method", "route", "status"])

_MAX_TRACKED = 100_000


def registry() -> CollectorRegistry:
    """The registry to expose: aggregated across processes in multiprocess mode, else this process."""
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if path and os.path.isdir(path):
        reg = CollectorRegistry()
        multiprocess.MultiProcessCollector(reg, path=path)  # type: ignore[no-untyped-call]
        return reg
    return prom_registry.REGISTRY


class InstrumentedBackend:
    """A transparent proxy over an engine: same methods, same attributes, plus metrics."""

    def __init__(self, inner: Backend) -> None:
        object.__setattr__(self, "_inner", inner)
        object.__setattr__(self, "_running", {})  # job id -> (task, monotonic claim time)

    @property
    def inner(self) -> Backend:
        return cast(Backend, object.__getattribute__(self, "_inner"))

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if name.startswith("_") or not callable(attr):
            return attr
        if not inspect.iscoroutinefunction(attr):
            return attr
        wrapped = self._wrap(name, attr)
        object.__setattr__(self, name, wrapped)  # cached: later look-ups skip __getattr__
        return wrapped

    def __setattr__(self, name: str, value: Any) -> None:
        # clock_offset and other settings must reach the engine itself
        setattr(self.inner, name, value)

    def __repr__(self) -> str:
        return f"<instrumented {self.inner!r}>"

    def _wrap(self, name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        observe = BACKEND_CALL_SECONDS.labels(name).observe

        async def call(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                result = await method(*args, **kwargs)
            except Exception as exc:
                BACKEND_ERRORS.labels(name, type(exc).__name__).inc()
                raise
            finally:
                observe(time.perf_counter() - start)
            self._account(name, args, result)
            return result

        call.__name__ = name
        return call

    def _account(self, name: str, args: tuple[Any, ...], result: Any) -> None:
        """Turn the outcome of a state-changing call into job counters."""
        running: dict[str, tuple[str, float]] = object.__getattribute__(self, "_running")
        req = args[0] if args else None
        if name == "claim" and isinstance(req, ClaimRequest):
            now = time.monotonic()
            if len(running) > _MAX_TRACKED:
                running.clear()
            for job in result:
                running[job.id] = (job.task, now)
                JOBS_CLAIMED.labels(job.task).inc()
        elif name == "complete" and isinstance(req, CompleteRequest) and result:
            self._finish(running, req.job_id, "succeeded")
        elif name == "complete_many" and isinstance(req, list):
            for item, done in zip(req, result, strict=False):
                if done and isinstance(item, CompleteRequest):
                    self._finish(running, item.job_id, "succeeded")
        elif name == "fail" and isinstance(req, FailRequest) and result is not None:
            self._finish(running, req.job_id, "failed" if result == JobState.FAILED else "retried")
        elif name == "cancel" and isinstance(req, CancelRequest):
            JOBS_FINISHED.labels(result.task, "canceled").inc()
        elif name in ("enqueue", "enqueue_many"):
            results = result if isinstance(result, list) else [result]
            for item in results:
                if item.created:
                    JOBS_SUBMITTED.labels(item.job.task).inc()
        elif name == "release" and isinstance(req, ReleaseRequest) and result:
            running.pop(req.job_id, None)

    @staticmethod
    def _finish(running: dict[str, tuple[str, float]], job_id: str, outcome: str) -> None:
        task, started = running.pop(job_id, ("unknown", -1.0))
        JOBS_FINISHED.labels(task, outcome).inc()
        if started >= 0:
            RUN_SECONDS.labels(task).observe(time.monotonic() - started)


def instrument(backend: Backend) -> Backend:
    """Wrap ``backend`` so every call is measured; wrapping twice is a no-op."""
    if isinstance(backend, InstrumentedBackend):
        return backend
    return cast(Backend, InstrumentedBackend(backend))


def uninstrumented(backend: Backend) -> Backend:
    """The engine under the wrapper (for code that needs the concrete class)."""
    return backend.inner if isinstance(backend, InstrumentedBackend) else backend
