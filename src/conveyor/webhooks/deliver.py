"""The built-in delivery task: sign the event per Standard Webhooks and POST it.

A delivery is an ordinary job on queue ``conveyor.webhooks``: any exception (a non-2xx
answer, a timeout, a refused connection) fails the attempt and the worker retries it with the
app's webhook backoff; after ``max_attempts`` it is a dead letter, listed in
``/v1/dead-letters`` and redrivable. The ``webhook-id`` is the delivery job's id, the same on
every retry, so receivers deduplicate on it.

The request goes through ``address.vetted_transport``: the host is resolved and every address
checked when connecting, and the connection goes to the checked address (no second look-up).
A refused address is not retried. The receiver's answer body is never stored: the delivery
job's error names the event, the redacted URL and the status only.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx
from standardwebhooks import Webhook

from conveyor import serde
from conveyor.context import JobContext
from conveyor.errors import ConveyorError
from conveyor.webhooks.address import PrivateAddress, vetted_transport
from conveyor.webhooks.config import CALLBACK, WebhookSettings, redact_url
from conveyor.webhooks.notifier import DELIVER_TASK, WEBHOOK_QUEUE
from conveyor.worker.errors import DoNotRetry

if TYPE_CHECKING:
    from conveyor.app import Conveyor

USER_AGENT = "Conveyor-Webhooks/1"


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
            async with httpx.AsyncClient(
                transport=transport, timeout=settings.timeout, follow_redirects=False, trust_env=False
            ) as client:
                response = await client.post(target, content=body.encode(), headers=headers)
        except PrivateAddress as exc:
            raise DoNotRetry(f"{event} to {shown}: refused: {exc}") from None
        except httpx.HTTPError as exc:
            raise DeliveryFailed(f"{event} to {shown}: {type(exc).__name__}") from None
        if not 200 <= response.status_code < 300:
            raise DeliveryFailed(f"{event} to {shown}: HTTP {response.status_code}")
        return {"status": response.status_code, "attempt": ctx.attempt}

    app.task(
        name=DELIVER_TASK,
        queue=WEBHOOK_QUEUE,
        max_attempts=settings.max_attempts,
        timeout=settings.timeout * 3,
        retry=settings.retry,
    )(deliver)
