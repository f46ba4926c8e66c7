"""The outbox consumer in-process: one delivery per ending, however many notices; acks only."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from conveyor.app import Conveyor
from conveyor.backend.protocol import CancelRequest, JobFilter, OutboxRequest, PruneRequest
from conveyor.types import Job
from conveyor.webhooks import WEBHOOK_QUEUE, OutboxConsumer
from tests.apps.webhooks_app import make_app
from tests.engines import ENGINES, engine_url


@pytest.fixture(params=ENGINES)
async def url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    with engine_url(request.param, tmp_path) as found:
        yield found


async def test_every_notice_of_one_ending_makes_the_same_single_delivery(url: str) -> None:
    app = make_app(url)
    try:
        backend = await app.backend()
        job = await app.enqueue_async("hooks.ok", {"value": 1}, None)
        await backend.cancel(CancelRequest(job.id))
        [entry] = await backend.take_outbox(OutboxRequest())
        consumer = OutboxConsumer(app, backend)
        assert await consumer.announce(entry)
        assert await consumer.announce(entry)  # a second node took the same entry (lease ran out)
        backend.clock_offset = 2 * app.idempotency_ttl  # the delivery's idempotency key expired...
        await backend.prune(PruneRequest(older_than=30 * app.idempotency_ttl))
        assert await consumer.announce(entry)  # ...its id, derived from the ending, still refuses a copy
        [delivery] = await _deliveries(app)
        assert delivery.args["job_id"] == job.id and delivery.args["event"] == "job.canceled"
        assert delivery.args["payload"]["data"]["state"] == "canceled"
    finally:
        await app.aclose()


async def _deliveries(app: Conveyor) -> list[Job]:
    return (await (await app.backend()).list_jobs(JobFilter(queue=WEBHOOK_QUEUE))).jobs


async def test_an_app_without_webhooks_only_acknowledges(url: str) -> None:
    app = Conveyor(url)
    app.task(name="t")(lambda: None)
    try:
        backend = await app.backend()
        for _ in range(3):
            job = await app.enqueue_async("t", {}, None)
            await backend.cancel(CancelRequest(job.id))
        consumer = OutboxConsumer(app, backend)
        assert await consumer.drain() == 3
        assert await backend.take_outbox(OutboxRequest()) == []
        assert await _deliveries(app) == []
    finally:
        await app.aclose()
