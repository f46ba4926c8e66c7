"""Prometheus metrics: the counters and histograms, and the telemetry handler that feeds them.

``PrometheusHandler`` is one handler of the app's telemetry seam (``conveyor.telemetry``):
it turns typed events into the metrics below, so neither the engines nor the worker know about
Prometheus. ``Conveyor`` attaches it when it first opens its engine.

Import this module only when the process is configured: several processes
(``conveyor serve --workers N``) share one view when ``PROMETHEUS_MULTIPROC_DIR`` is set before
prometheus-client is first imported; ``registry()`` then aggregates the files every process
writes (prometheus-client's multiprocess mode). ``conveyor.telemetry`` itself does not import
prometheus-client, so creating an app never fixes that choice too early.
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Histogram, multiprocess
from prometheus_client import registry as prom_registry

from conveyor.telemetry import EngineCall, Event, JobClaimed, JobEnded, JobsSubmitted

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
    "conveyor_job_run_seconds", "Wall time of one attempt, task start to recorded end", ["task"], buckets=RUN_BUCKETS
)
WAIT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
QUEUE_WAIT_SECONDS = Histogram(
    "conveyor_job_queue_wait_seconds",
    "Time from when a job could first run (enqueue, or its run_at when later) to its first start",
    ["queue", "task"],
    buckets=WAIT_BUCKETS,
)
SUBMIT_SECONDS = Histogram(
    "conveyor_submit_seconds", "Latency of POST /v1/jobs as seen by the API, by HTTP status", ["status"]
)
HTTP_REQUESTS = Counter("conveyor_http_requests_total", "HTTP requests served", ["method", "route", "status"])


def registry() -> CollectorRegistry:
    """The registry to expose: aggregated across processes in multiprocess mode, else this process."""
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if path and os.path.isdir(path):
        reg = CollectorRegistry()
        multiprocess.MultiProcessCollector(reg, path=path)  # type: ignore[no-untyped-call]
        return reg
    return prom_registry.REGISTRY


def prometheus_handler(event: Event) -> None:
    """The telemetry handler behind every metric above except the HTTP ones (the API's own)."""
    if isinstance(event, EngineCall):
        BACKEND_CALL_SECONDS.labels(event.operation).observe(event.seconds)
        if event.error_type is not None:
            BACKEND_ERRORS.labels(event.operation, event.error_type).inc()
    elif isinstance(event, JobEnded):
        JOBS_FINISHED.labels(event.task, event.outcome).inc()
        if event.run_seconds is not None:
            RUN_SECONDS.labels(event.task).observe(event.run_seconds)
    elif isinstance(event, JobClaimed):
        job = event.job
        JOBS_CLAIMED.labels(job.task).inc()
        if job.attempts == 1 and job.started_at is not None:
            # a retry's wait is its backoff, not the queue's: only first starts say how long jobs queue
            ready = max(job.created_at, job.run_at)
            QUEUE_WAIT_SECONDS.labels(job.queue, job.task).observe(max(0.0, job.started_at - ready))
    elif isinstance(event, JobsSubmitted):
        for job in event.jobs:
            JOBS_SUBMITTED.labels(job.task).inc()
