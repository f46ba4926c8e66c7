"""Turn "a job ended" into delivery jobs, right after the engine committed the transition.

``NotifyingBackend`` wraps the app's engine (``Conveyor._make_backend``), so every path that
ends a job goes through it without the worker, the API or the CLI knowing about webhooks:
``complete`` / ``complete_many`` (succeeded), ``fail`` to ``failed``, ``reap_expired`` to ``failed`` (lease
expired on the last attempt), ``cancel``. For each endpoint that wants the event it enqueues
one ``conveyor.webhooks.deliver`` job with an idempotency key, so a duplicate notice makes no
second delivery. The delivery job is then retried, dead-lettered and redriven like any job.

Guarantee: at-least-once once the delivery job is stored. The transition and the enqueue are
two engine calls; a process killed between them (or an engine outage that outlasts the three
enqueue tries) loses that notification. docs/decisions/0002-webhooks.md explains the trade-off.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

from conveyor.api.schemas import JobStatus
from conveyor.backend.protocol import (
    Backend,
    CancelRequest,
    CompleteRequest,
    EffectRequest,
    ExpireRequest,
    FailRequest,
)
from conveyor.errors import IdempotencyConflict
from conveyor.task import CallOptions
from conveyor.types import Job, JobState
from conveyor.webhooks.config import CALLBACK, WebhookSettings

if TYPE_CHECKING:
    from conveyor.app import Conveyor

LOGGER = logging.getLogger("conveyor.webhooks")
DELIVER_TASK = "conveyor.webhooks.deliver"
WEBHOOK_QUEUE = "conveyor.webhooks"
CALLBACK_EFFECT = "conveyor.webhooks.callback_url"
"""Effect key under which a job's per-submit callback URL is stored (see ``remember_callback``)."""
EVENT_OF = {JobState.SUCCEEDED: "job.succeeded", JobState.FAILED: "job.failed", JobState.CANCELED: "job.canceled"}
ENQUEUE_TRIES = (0.0, 0.2, 1.0)


def internal_task(name: str) -> bool:
    """Built-in tasks only Conveyor itself enqueues: the API refuses them (a forged delivery job
    would be signed with the app's secret)."""
    return name.startswith("conveyor.webhooks.")


def event_payload(job: Job, event: str) -> dict[str, Any]:
    """The Standard Webhooks body: type, timestamp of the end, and the job's status body."""
    at = job.finished_at or job.updated_at
    return {
        "type": event,
        "timestamp": datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z"),
        "data": JobStatus.from_job(job).model_dump(mode="json"),
    }


def idempotency_key(job: Job, event: str, endpoint: str) -> str:
    """``webhook:{job_id}:{event}:{endpoint digest}:{end time ms}``.

    The end time tells apart two endings of one job (failed, redriven, failed again): each
    is its own notification. The endpoint is digested so a long URL-named endpoint still fits.
    """
    digest = hashlib.sha256(endpoint.encode()).hexdigest()[:16]
    ended = round((job.finished_at or job.updated_at) * 1000)
    return f"webhook:{job.id}:{event}:{digest}:{ended}"


async def remember_callback(backend: Backend, job_id: str, url: str) -> None:
    """Store a job's callback URL before the job exists, so even an instant finish sees it."""
    await backend.record_effect(EffectRequest(job_id, CALLBACK_EFFECT, url))


class NotifyingBackend:
    """A transparent proxy over an engine that enqueues webhook deliveries when jobs end."""

    def __init__(self, inner: Backend, app: Conveyor, settings: WebhookSettings) -> None:
        object.__setattr__(self, "_inner", inner)
        object.__setattr__(self, "_app", app)
        object.__setattr__(self, "_settings", settings)

    @property
    def inner(self) -> Backend:
        return cast(Backend, object.__getattribute__(self, "_inner"))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self.inner, name, value)  # clock_offset and other settings belong to the engine

    def __repr__(self) -> str:
        return f"<webhooks {self.inner!r}>"

    # -- the transitions that end a job --------------------------------------------------------

    async def complete(self, req: CompleteRequest) -> bool:
        done = await self.inner.complete(req)
        if done:
            await self._ended(req.job_id)
        return done

    async def complete_many(self, reqs: list[CompleteRequest]) -> list[bool]:
        done = await self.inner.complete_many(reqs)
        for req, ok in zip(reqs, done, strict=True):
            if ok:
                await self._ended(req.job_id)
        return done

    async def fail(self, req: FailRequest) -> JobState | None:
        state = await self.inner.fail(req)
        if state is JobState.FAILED:
            await self._ended(req.job_id)
        return state

    async def expire(self, req: ExpireRequest) -> list[str]:
        reaped = await self.inner.expire(req)
        for job_id in reaped:
            await self._ended(job_id)  # only those that went to failed are notified
        return reaped

    async def cancel(self, req: CancelRequest) -> Job:
        job = await self.inner.cancel(req)
        await self.notify(job)
        return job

    # -- deliveries ----------------------------------------------------------------------------

    async def _ended(self, job_id: str) -> None:
        try:
            job = await self.inner.get(job_id)
        except Exception as exc:
            LOGGER.error("webhooks: cannot read job %s to notify its end: %s", job_id, exc)
            return
        if job is not None:
            await self.notify(job)

    async def targets(self, job: Job, event: str) -> list[tuple[str, str | None]]:
        """(endpoint name, callback URL or None) of every receiver of this event."""
        settings: WebhookSettings = object.__getattribute__(self, "_settings")
        out: list[tuple[str, str | None]] = [
            (e.name, None) for e in settings.endpoints if e.wants(event, job.tenant, job.task)
        ]
        if settings.callbacks:
            done, url = await self.inner.get_effect(job.id, CALLBACK_EFFECT)
            if done and isinstance(url, str):
                out.append((CALLBACK, url))
        return out

    async def notify(self, job: Job) -> None:
        """Enqueue one delivery per interested endpoint; never raises (the transition is done)."""
        event = EVENT_OF.get(job.state)
        if event is None or job.task == DELIVER_TASK:  # a delivery's own end is never announced
            return
        try:
            targets = await self.targets(job, event)
        except Exception as exc:
            LOGGER.error("webhooks: cannot list receivers of %s for job %s: %s", event, job.id, exc)
            return
        payload = event_payload(job, event) if targets else None
        for endpoint, url in targets:
            args = {"job_id": job.id, "event": event, "endpoint": endpoint, "url": url, "payload": payload}
            await self._enqueue(job, args, idempotency_key(job, event, endpoint))

    async def _enqueue(self, job: Job, args: dict[str, Any], key: str) -> None:
        app: Conveyor = object.__getattribute__(self, "_app")
        request = app.build_request(DELIVER_TASK, args, CallOptions(idempotency_key=key, tenant=job.tenant))
        for pause in ENQUEUE_TRIES:
            await asyncio.sleep(pause)
            try:
                await self.inner.enqueue(request)
                return
            except IdempotencyConflict:
                return  # already enqueued by an earlier notice of the same ending
            except Exception as exc:
                error = exc
        LOGGER.error(
            "webhooks: could not enqueue %s delivery of job %s to %s: %s",
            args["event"],
            job.id,
            args["endpoint"],
            error,
        )
