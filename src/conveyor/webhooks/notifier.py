"""Turn the engine's outbox ("job X reached terminal state S") into webhook delivery jobs.

Every engine writes an outbox entry in the same transaction / script as the change that ends
a job (migration 0002's trigger, ``lib.lua`` ``transition()``), so a process killed right after
the transition loses nothing: the entry waits in the engine. Every worker node runs an
``OutboxConsumer`` in its maintenance loop (``worker/maintenance.py``): it takes a batch of
entries with a lease, reads each job, enqueues one ``conveyor.webhooks.deliver`` job per
endpoint that wants the event (and the job's own ``callback_url``), then acks the batch. An
entry whose deliveries could not all be enqueued is not acked: its lease expires and a node
takes it again. Several nodes may take the same entry (a lease that ran out, a slow node):
each delivery is enqueued with an idempotency key and a job id derived from the ending, so a
second notice of one ending makes no second delivery (see docs/decisions/0002-webhooks.md for
the one window where it can). Email notifications (``conveyor/email``) ride the same path: one
``conveyor.email.send`` job per recipient, keyed the same way. An app without webhooks or
email only acks, so the outbox stays small.

The node that finished a job nudges its own consumer through the app's telemetry seam
(``JobEnded``), so webhooks leave within milliseconds; other nodes poll on an interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from conveyor.api.schemas import JobStatus
from conveyor.backend.protocol import Backend, OutboxEntry, OutboxRequest
from conveyor.email import message as mail
from conveyor.email import targets as stored_targets
from conveyor.email.settings import SEND_TASK
from conveyor.errors import DuplicateJobId, IdempotencyConflict
from conveyor.task import CallOptions
from conveyor.telemetry import Event, JobEnded
from conveyor.types import INTERNAL_TENANT, Job, JobState
from conveyor.webhooks.config import CALLBACK

if TYPE_CHECKING:
    from conveyor.app import Conveyor

LOGGER = logging.getLogger("conveyor.webhooks")
DELIVER_TASK = "conveyor.webhooks.deliver"
WEBHOOK_QUEUE = "conveyor.webhooks"
EVENT_OF = {JobState.SUCCEEDED: "job.succeeded", JobState.FAILED: "job.failed", JobState.CANCELED: "job.canceled"}
BATCH = 100
"""Entries per take when the app has webhooks (each costs a read and an enqueue per receiver)."""
ACK_ONLY_BATCH = 1000
"""Entries per take when it has none: they are only acknowledged."""
LEASE = 60.0
"""Seconds a taken batch stays hidden from other nodes; past it, an unacked entry is taken again."""


def internal_task(name: str) -> bool:
    """Built-in tasks only Conveyor itself enqueues: the API refuses them (a forged delivery job
    would be signed with the app's secret, a forged mail sent from the app's address)."""
    return name.startswith(("conveyor.webhooks.", "conveyor.email."))


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z")


def event_payload(job: Job, event: str, at: float | None = None, internals: bool = True) -> dict[str, Any]:
    """The Standard Webhooks body: type, time of the end, and the job's status body.

    ``internals=False`` (a tenant's ``callback_url``) leaves out what only operators see, such
    as the error's traceback; the operator's configured endpoints get it."""
    ended = at if at is not None else (job.finished_at or job.updated_at)
    status = JobStatus.from_job(job, internals=internals)
    return {"type": event, "timestamp": _iso(ended), "data": status.model_dump(mode="json")}


def idempotency_key(job_id: str, event: str, endpoint: str, at: float) -> str:
    """``webhook:{job_id}:{event}:{endpoint digest}:{end time ms}``.

    The end time tells apart two endings of one job (failed, redriven, failed again): each
    is its own notification. The endpoint is digested so a long URL-named endpoint still fits.
    """
    digest = hashlib.sha256(endpoint.encode()).hexdigest()[:16]
    return f"webhook:{job_id}:{event}:{digest}:{round(at * 1000)}"


def delivery_id(key: str, at: float) -> str:
    """The delivery job's id (and so its ``webhook-id``), derived from its idempotency key.

    A UUIDv7 whose time is the job's end and whose random bits are the key's digest: still
    time-ordered like every job id, and the same for every notice of one ending. Once the
    idempotency key expired, a late second notice is refused as a duplicate id while the first
    delivery job exists, and after that it carries the same ``webhook-id`` (receivers dedupe).
    """
    bits = int.from_bytes(hashlib.sha256(key.encode()).digest()[:10], "big")
    ms = max(0, round(at * 1000)) & ((1 << 48) - 1)
    value = (ms << 80) | (0x7 << 76) | ((bits >> 62) & 0xFFF) << 64 | (0b10 << 62) | (bits & ((1 << 62) - 1))
    return str(uuid.UUID(int=value))


class OutboxConsumer:
    """Drains the engine's outbox into delivery jobs for one node (see the module docstring)."""

    def __init__(self, app: Conveyor, backend: Backend) -> None:
        self.app = app
        self.backend = backend
        self.announces = app.webhooks is not None or app.email is not None
        self.batch = BATCH if self.announces else ACK_ONLY_BATCH
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    def attach(self) -> Callable[[], None]:
        """Be nudged when a job ends in this process (only useful when there is something to send)."""
        self._loop = asyncio.get_running_loop()
        if not self.announces:
            return lambda: None
        return self.app.telemetry.attach(self._on_event)

    def _on_event(self, event: Event) -> None:
        if isinstance(event, JobEnded) and event.terminal and self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    async def wait(self, timeout: float) -> None:
        """Until a job ends here (nudge) or ``timeout`` seconds pass."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout)
        self._wake.clear()

    async def drain(self) -> int:
        """Handle batches until the outbox has no free entry; returns the entries taken."""
        total = 0
        while True:
            handled = await self.run_once()
            total += handled
            if handled < self.batch:
                return total

    async def run_once(self) -> int:
        """Take one batch, enqueue its deliveries, ack what is done; returns entries taken."""
        entries = await self.app.telemetry.timed(
            "take_outbox", self.backend.take_outbox(OutboxRequest(self.batch, LEASE))
        )
        if not entries:
            return 0
        done = [e.seq for e in entries] if not self.announces else [e.seq for e in entries if await self.announce(e)]
        await self.app.telemetry.timed("ack_outbox", self.backend.ack_outbox(done))
        return len(entries)

    async def announce(self, entry: OutboxEntry) -> bool:
        """Enqueue the deliveries of one ending; False leaves the entry for a later take."""
        event = EVENT_OF[entry.state]
        try:
            job = await self.backend.get(entry.job_id)
        except Exception as exc:
            LOGGER.warning("webhooks: cannot read job %s to announce %s: %s", entry.job_id, event, exc)
            return False
        if job is None or internal_task(job.task):  # pruned; a delivery's own end is never announced
            return True
        targets = self.targets(job, event) if self.app.webhooks is not None else []
        mails = self.mail_targets(job, event)
        if not targets and not mails:
            return True
        age = time.time() - entry.at
        if age > self.app.idempotency_ttl:
            LOGGER.warning(
                "webhooks: announcing %s of job %s %.0f s after it happened, past the idempotency window: "
                "a receiver may get it twice (same webhook-id, dedupe on it)",
                event,
                job.id,
                age,
            )
        if job.state is not entry.state:
            LOGGER.info(
                "webhooks: job %s is %s again; announcing its %s with its current record", job.id, job.state, event
            )
        ok = True
        for endpoint, url in targets:
            payload = event_payload(job, event, entry.at, internals=endpoint != CALLBACK)
            args = {"job_id": job.id, "event": event, "endpoint": endpoint, "url": url, "payload": payload}
            ok = await self._enqueue(job, args, idempotency_key(job.id, event, endpoint, entry.at), entry.at) and ok
        for address, internals in mails:
            subject, text = mail.render(job, event, entry.at, internals)
            args = {"job_id": job.id, "event": event, "to": address, "subject": subject, "text": text}
            key = idempotency_key(job.id, event, f"email:{address}", entry.at)
            ok = await self._enqueue(job, args, key, entry.at, SEND_TASK) and ok
        return ok

    def mail_targets(self, job: Job, event: str) -> list[tuple[str, bool]]:
        """(address, show internals) of every email recipient of this event: the configured
        recipients (operators: internals), then the job's own ``notify`` (not repeated)."""
        settings = self.app.email
        if settings is None:
            return []
        out = [(a, True) for a in settings.recipients] if settings.wants(event, job.task) else []
        seen = {a.lower() for a, _ in out}
        for address in stored_targets.decode(job.callback_url)[1]:
            if address.lower() not in seen:
                seen.add(address.lower())
                out.append((address, False))
        return out

    def targets(self, job: Job, event: str) -> list[tuple[str, str | None]]:
        """(endpoint name, callback URL or None) of every receiver of this event."""
        settings = self.app.webhooks
        assert settings is not None
        out: list[tuple[str, str | None]] = [
            (e.name, None) for e in settings.endpoints if e.wants(event, job.tenant, job.task)
        ]
        callback = stored_targets.decode(job.callback_url)[0]
        if settings.callbacks and callback:
            out.append((CALLBACK, callback))
        return out

    async def _enqueue(self, job: Job, args: dict[str, Any], key: str, at: float, task: str = DELIVER_TASK) -> bool:
        # owned by the internal tenant: the job's tenant must not see (or cancel) the operator's deliveries
        options = CallOptions(idempotency_key=key, tenant=INTERNAL_TENANT)
        request = self.app.build_request(task, args, options)
        request = replace(request, job_id=delivery_id(key, at))
        try:
            result = await self.app.telemetry.timed("enqueue", self.backend.enqueue(request))
        except (IdempotencyConflict, DuplicateJobId):
            return True  # already enqueued by an earlier notice of the same ending
        except Exception as exc:
            LOGGER.warning(
                "webhooks: could not enqueue %s delivery of job %s to %s: %s (will retry)",
                args["event"],
                job.id,
                args.get("endpoint") or args.get("to"),
                exc,
            )
            return False
        self.app.telemetry.submitted([result.job], [result.created])
        return True
