"""``GET /metrics`` in Prometheus text format.

Counters and histograms come from ``conveyor.metrics`` (every process that shares
``PROMETHEUS_MULTIPROC_DIR``, e.g. the workers ``conveyor serve --workers`` starts). Queue depth
and the age of the oldest queued job are read from the engine at scrape time, so they are
right whichever process moved the jobs.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

from conveyor.api.auth import Principal
from conveyor.api.deps import AUTH_ERRORS, scope, service
from conveyor.errors import BackendUnavailable
from conveyor.metrics import registry
from conveyor.types import QueueStats

router = APIRouter(tags=["metrics"])


class QueueCollector(Collector):
    """Gauges from one queue_stats snapshot."""

    def __init__(self, stats: list[QueueStats]) -> None:
        self.stats = stats

    def collect(self) -> Iterable[GaugeMetricFamily]:
        depth = GaugeMetricFamily("conveyor_queue_jobs", "Jobs in the queue by state", labels=["queue", "state"])
        oldest = GaugeMetricFamily(
            "conveyor_queue_oldest_age_seconds", "Age of the oldest queued job", labels=["queue"]
        )
        paused = GaugeMetricFamily("conveyor_queue_paused", "1 when the queue is paused", labels=["queue"])
        for st in self.stats:
            for state, n in st.counts.items():
                depth.add_metric([st.queue, state], n)
            oldest.add_metric([st.queue], st.oldest_queued_age or 0.0)
            paused.add_metric([st.queue], 1.0 if st.paused else 0.0)
        yield depth
        yield oldest
        yield paused


@router.get(
    "/metrics",
    summary="Prometheus metrics (admin)",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}, **AUTH_ERRORS},
)
async def metrics(request: Request, principal: Annotated[Principal, Depends(scope("admin"))]) -> Response:
    up = 1.0
    try:
        stats = await (await service(request).backend()).queue_stats()
    except BackendUnavailable:  # only an outage reads as "engine down"; a bug is a logged 500
        stats, up = [], 0.0
    body = generate_latest(registry())
    snapshot = CollectorRegistry()
    snapshot.register(QueueCollector(stats))
    engine = GaugeMetricFamily("conveyor_engine_up", "1 when the engine answered the last scrape")
    engine.add_metric([], up)
    snapshot.register(_Static([engine]))
    return Response(body + generate_latest(snapshot), media_type=CONTENT_TYPE_LATEST)


class _Static(Collector):
    def __init__(self, families: list[GaugeMetricFamily]) -> None:
        self.families = families

    def collect(self) -> Iterable[GaugeMetricFamily]:
        return self.families
