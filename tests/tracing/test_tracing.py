"""OpenTelemetry (issue 11): the worker's span joins the submitting request's trace, on every
engine, through the W3C trace context stored on the job. A real worker node runs in this
process so the SDK's in-memory exporter sees both sides."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.trace import SpanKind, StatusCode

from conveyor.types import JobState
from conveyor.worker.config import WorkerConfig
from conveyor.worker.supervisor import Worker
from tests.engines import ENGINES, engine_url
from tests.tracing.traced_app import EXPORTER, PROVIDER, make_app


@pytest.fixture(params=ENGINES, ids=list(ENGINES))
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with engine_url(request.param, tmp_path) as engine:
        EXPORTER.clear()
        yield engine


async def _drain(url: str, span_name: str) -> None:
    """One in-process worker node, run until the exporter holds ``span_name`` (deadline 60 s),
    then drained like a SIGTERM would."""
    app = make_app(url)
    config = WorkerConfig(app_spec="tests.tracing.traced_app:app", lease=5.0, registry_interval=1.0, grace=5.0)
    worker = Worker(app, config)
    node = asyncio.ensure_future(worker.run())
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    try:
        while span_name not in {s.name for s in EXPORTER.get_finished_spans()}:
            assert not node.done(), "the worker node stopped before the job ran"
            assert loop.time() < deadline, f"no {span_name!r} span within 60 s"
            await asyncio.sleep(0.05)
    finally:
        worker.request_shutdown()
        try:
            assert await asyncio.wait_for(asyncio.shield(node), timeout=30) == 0
        finally:
            if not node.done():
                worker.request_shutdown()  # a second request stops at once
                await node
            await app.aclose()


async def test_the_run_span_joins_the_submitting_request_trace(url: str) -> None:
    app = make_app(url)
    tracer = PROVIDER.get_tracer("web")
    with tracer.start_as_current_span("POST /reports") as request_span:
        job = await app.enqueue_async("traced.ok", {"n": 21})
    await app.aclose()
    assert job.trace_context and job.trace_context["traceparent"].split("-")[1] == format(
        request_span.get_span_context().trace_id, "032x"
    ), "the job carries the request's trace id"
    await _drain(url, "traced.ok process")

    spans = {s.name: s for s in EXPORTER.get_finished_spans()}
    send, run = spans["traced.ok send"], spans["traced.ok process"]
    assert send.kind is SpanKind.PRODUCER and run.kind is SpanKind.CONSUMER
    assert send.parent is not None and send.parent.span_id == request_span.get_span_context().span_id
    assert run.context.trace_id == request_span.get_span_context().trace_id, "one trace from request to run"
    assert run.parent is not None and run.parent.span_id == send.context.span_id, "the run is a child of the send"
    assert send.attributes["messaging.message.id"] == job.id == run.attributes["messaging.message.id"]
    assert run.attributes["conveyor.outcome"] == "succeeded" and run.status.status_code is not StatusCode.ERROR


async def test_a_failed_run_is_an_error_span_and_a_sync_submit_keeps_the_callers_span(url: str) -> None:
    app = make_app(url)
    tracer = PROVIDER.get_tracer("web")

    def sync_view() -> str:
        # a Django/Flask view: the sync API runs on a portal thread, the span context goes with it
        with tracer.start_as_current_span("GET /boom"):
            return app.enqueue("traced.boom", {}).id

    job_id = await asyncio.to_thread(sync_view)
    await asyncio.to_thread(app.close)  # the sync API's portal holds its own engine connection
    await app.aclose()
    await _drain(url, "traced.boom process")
    spans = {s.name: s for s in EXPORTER.get_finished_spans()}
    view, send, run = spans["GET /boom"], spans["traced.boom send"], spans["traced.boom process"]
    assert send.parent is not None and send.parent.span_id == view.context.span_id
    assert run.context.trace_id == view.context.trace_id
    assert run.status.status_code is StatusCode.ERROR and run.attributes["conveyor.outcome"] == "failed"
    app = make_app(url)
    try:
        job = await app.get_async(job_id)
        assert job is not None and job.state is JobState.FAILED
    finally:
        await app.aclose()
