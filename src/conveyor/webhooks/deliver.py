"""The built-in delivery task: sign the event per Standard Webhooks and POST it.

A delivery is an ordinary job on queue ``conveyor.webhooks``: any exception (a non-2xx
answer, a timeout, a refused connection) fails the attempt and the worker retries it with the
app's webhook backoff; after ``max_attempts`` it is a dead letter, listed in
``/v1/dead-letters`` and redrivable. Hostile receivers: a 429 or 503 with ``Retry-After``
delays the retry at least that long (``RetryAfter``, capped at RETRY_AFTER_CAP); a 410 Gone
means the receiver disabled the endpoint, so the delivery stops at once (dead letter, no
retries); redirects are never followed (a 3xx is a failed attempt); one deadline
(``settings.timeout``) covers the whole exchange, so a receiver that hangs or streams forever
costs one timeout per attempt and the body of an answer is never read. The ``webhook-id`` is
the delivery job's id, the same on every retry, so receivers deduplicate on it.

The request goes through ``address.vetted_transport``: the host is resolved and every address
checked when connecting, and the connection goes to the checked address (no second look-up).
A refused address is not retried. The receiver's answer body is never stored: the delivery
job's error names the event, the redacted URL and the status only.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

import httpx
from standardwebhooks import Webhook

from conveyor import serde
from conveyor.context import JobContext
from conveyor.errors import ConveyorError
from conveyor.webhooks.address import PrivateAddress, vetted_transport
from conveyor.webhooks.config import CALLBACK, WebhookSettings, redact_url
from conveyor.webhooks.notifier import DELIVER_TASK, WEBHOOK_QUEUE
from conveyor.worker.errors import DoNotRetry, RetryAfter

if TYPE_CHECKING:
    from conveyor.app import Conveyor

USER_AGENT = "Conveyor-Webhooks/1"
RETRY_AFTER_CAP = 3600.0
"""Longest wait a receiver's Retry-After can impose on one retry (a larger value is capped)."""


class DeliveryFailed(ConveyorError):
    """The receiver did not accept the event (non-2xx answer or no answer); retried."""


def signed_headers(secret: str, msg_id: str, body: str, now: datetime | None = None) -> dict[str, str]:
    """The three Standard Webhooks headers for ``body`` (timestamp: now, as the spec wants)."""
    at = now or datetime.now(UTC)
    signature = Webhook(secret).sign(msg_id=msg_id, timestamp=at, data=body)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait (delta-seconds or an HTTP date), capped at
    RETRY_AFTER_CAP; None when absent or unreadable (the delivery's own backoff applies)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), RETRY_AFTER_CAP)
    try:
        at = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if at.tzinfo is None:
        return None
    return min(max(0.0, (at - (now or datetime.now(UTC))).total_seconds()), RETRY_AFTER_CAP)


def install(app: Conveyor, settings: WebhookSettings) -> None:
    """Register ``conveyor.webhooks.deliver`` on ``app`` with the settings' retry options."""

    async def deliver(
        ctx: JobContext, job_id: str, event: str, endpoint: str, payload: dict[str, Any], url: str | None = None
    ) -> dict[str, Any]:
        """POST one signed event to one endpoint; 2xx is done, anything else is retried."""
        secret = settings.secret_of(endpoint)
        target = url if endpoint == CALLBACK else (e.url if (e := settings.endpoint(endpoint)) else None)
        if secret is None or target is None:
            raise DoNotRetry(f"webhook endpoint {endpoint!r} is not configured on this worker's app")
        body = serde.dumps(payload)
        headers = signed_headers(secret, ctx.job_id, body)
        shown = redact_url(target)
        transport = vetted_transport(settings.allow_private(endpoint))
        try:
            # One deadline for the whole exchange: httpx's timeout is per read, so a receiver
            # trickling bytes forever would never hit it. The answer's body is never read.
            async with (
                asyncio.timeout(settings.timeout),
                httpx.AsyncClient(
                    transport=transport, timeout=settings.timeout, follow_redirects=False, trust_env=False
                ) as client,
                client.stream("POST", target, content=body.encode(), headers=headers) as response,
            ):
                status, retry_after = response.status_code, response.headers.get("retry-after")
        except PrivateAddress as exc:
            raise DoNotRetry(f"{event} to {shown}: refused: {exc}") from None
        except httpx.HTTPError as exc:
            raise DeliveryFailed(f"{event} to {shown}: {type(exc).__name__}") from None
        except TimeoutError:
            raise DeliveryFailed(f"{event} to {shown}: no complete answer within {settings.timeout:g} s") from None
        if status == 410:
            raise DoNotRetry(f"{event} to {shown}: HTTP 410 Gone: the receiver disabled this endpoint")
        if not 200 <= status < 300:
            wait = retry_after_seconds(retry_after) if status in (429, 503) else None
            if wait is not None:
                raise RetryAfter(f"{event} to {shown}: HTTP {status}, Retry-After {wait:g} s", wait)
            raise DeliveryFailed(f"{event} to {shown}: HTTP {status}")
        return {"status": status, "attempt": ctx.attempt}

    app.task(
        name=DELIVER_TASK,
        queue=WEBHOOK_QUEUE,
        max_attempts=settings.max_attempts,
        timeout=settings.timeout * 3,
        retry=settings.retry,
    )(deliver)
