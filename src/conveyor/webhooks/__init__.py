"""Webhooks signed per the Standard Webhooks spec, sent when jobs end (DESIGN §6).

Configure endpoints on the app (``Conveyor(webhooks=[WebhookEndpoint(...)])``) and/or accept a
``callback_url`` per submit; run a worker on queue ``conveyor.webhooks`` to send them.
See docs/webhooks.md and docs/decisions/0002-webhooks.md.
"""

from conveyor.webhooks.config import EVENTS, WebhookEndpoint, WebhookSettings, check_url
from conveyor.webhooks.notifier import DELIVER_TASK, WEBHOOK_QUEUE, OutboxConsumer, event_payload

__all__ = [
    "DELIVER_TASK",
    "EVENTS",
    "WEBHOOK_QUEUE",
    "OutboxConsumer",
    "WebhookEndpoint",
    "WebhookSettings",
    "check_url",
    "event_payload",
]
