"""An app with tracing on, exporting spans to memory (the SDK's in-memory exporter)."""

from __future__ import annotations

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from conveyor import Conveyor
from conveyor.tracing import Tracing

EXPORTER = InMemorySpanExporter()
PROVIDER = TracerProvider()
PROVIDER.add_span_processor(SimpleSpanProcessor(EXPORTER))


def make_app(url: str) -> Conveyor:
    app = Conveyor(url, tracing=Tracing(PROVIDER))

    @app.task(name="traced.ok")
    async def ok(n: int) -> int:
        return n * 2

    @app.task(name="traced.boom", max_attempts=1)
    async def boom() -> None:
        raise ValueError("boom")

    return app


app = make_app("sqlite:///var/traced-unused.db")
