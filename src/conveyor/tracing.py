"""OpenTelemetry spans for jobs, joined across processes by the W3C trace context on the job.

A submit opens a PRODUCER span ``<task> send`` (a child of whatever span is current: the web
request that submitted, when the web framework is instrumented) and stores its context on the
job (``Job.trace_context``: ``traceparent``/``tracestate``) in the same write. A worker node,
whichever machine it runs on, opens a CONSUMER span ``<task> process`` for each attempt, as a
child of that context, from the claim to the recorded end, with the outcome as its status. So
one trace shows the request, the enqueue, the wait and every attempt.

Optional: ``pip install 'conveyor[tracing]'`` (opentelemetry-api; an SDK and exporter are the
application's choice, configured as usual for OpenTelemetry). Turn it on with
``Conveyor(tracing=True)`` or ``CONVEYOR_TRACING=1``. The worker side is a handler of the app's
telemetry seam (``conveyor.telemetry``), so neither the engines nor the worker know about it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from conveyor.backend.protocol import EnqueueRequest
from conveyor.errors import ConfigError
from conveyor.telemetry import Event, JobClaimed, JobEnded

if TYPE_CHECKING:
    from opentelemetry.trace import Span, TracerProvider

FAILED_OUTCOMES = frozenset({"failed", "retried"})


class Tracing:
    """The app's tracer: ``submit_span`` on the producing side, ``handle`` as a telemetry handler."""

    def __init__(self, tracer_provider: TracerProvider | None = None) -> None:
        try:
            from opentelemetry import propagate, trace
        except ImportError:
            raise ConfigError(
                "tracing needs OpenTelemetry: pip install 'conveyor[tracing]' (opentelemetry-api)"
            ) from None
        self._trace = trace
        self._propagate = propagate
        self.tracer = trace.get_tracer("conveyor", tracer_provider=tracer_provider)
        self._runs: dict[str, Span] = {}
        self._lock = threading.Lock()

    @contextmanager
    def submit_span(self, request: EnqueueRequest) -> Iterator[EnqueueRequest]:
        """A PRODUCER span around the enqueue; yields the request carrying the span's context."""
        attributes = {"messaging.system": "conveyor", "messaging.destination.name": request.queue}
        kind = self._trace.SpanKind.PRODUCER
        with self.tracer.start_as_current_span(f"{request.task} send", kind=kind, attributes=attributes):
            carrier: dict[str, str] = {}
            self._propagate.inject(carrier)
            yield replace(request, trace_context=carrier or None)

    def stored(self, job_id: str) -> None:
        """Name the stored job on the current send span."""
        self._trace.get_current_span().set_attribute("messaging.message.id", job_id)

    def handle(self, event: Event) -> None:
        """Telemetry handler: open a job's run span on its claim, close it on its end."""
        if isinstance(event, JobClaimed):
            job = event.job
            parent = self._propagate.extract(job.trace_context or {})
            attributes: dict[str, Any] = {
                "messaging.system": "conveyor",
                "messaging.destination.name": job.queue,
                "messaging.message.id": job.id,
                "conveyor.task": job.task,
                "conveyor.attempt": job.attempts,
            }
            span = self.tracer.start_span(
                f"{job.task} process", context=parent, kind=self._trace.SpanKind.CONSUMER, attributes=attributes
            )
            with self._lock:
                self._runs[job.id] = span
        elif isinstance(event, JobEnded):
            with self._lock:
                run = self._runs.pop(event.job_id, None)
            if run is None:  # a cancel of a job this process was not running
                return
            run.set_attribute("conveyor.outcome", event.outcome)
            if event.outcome in FAILED_OUTCOMES:
                run.set_status(self._trace.Status(self._trace.StatusCode.ERROR, event.outcome))
            run.end()
