"""The example application: ``make run`` serves it and ``--app examples.app:app`` loads it.

Tasks are plain functions in their own modules (importable and testable without an app) and
are registered here with the options they run under.
"""

from __future__ import annotations

import os

from conveyor import Conveyor, QueueConfig, RetryPolicy, WebhookSettings
from examples import contacts, demo, export, newsletter, report, report_workflow, thumbnails, transcode, vision

_CALLBACK_SECRET = os.environ.get("EXAMPLES_CALLBACK_SECRET")
"""Enables per-submit ``callback_url`` (examples/story.py receives one). Private callback
addresses are allowed because the story's receiver is on this machine: local development only."""

app = Conveyor(
    os.environ.get("CONVEYOR_URL", "sqlite:///var/conveyor.db"),
    webhooks=WebhookSettings(callback_secret=_CALLBACK_SECRET, allow_private_callbacks=True)
    if _CALLBACK_SECRET
    else None,
    queues=[
        QueueConfig("default", max_depth=100_000),
        QueueConfig("reports", max_depth=10_000),
        QueueConfig("imports", max_depth=1_000),
        QueueConfig("media", max_depth=10_000),
        QueueConfig("exports", max_depth=1_000),
        QueueConfig("mail", max_depth=100_000),
    ],
)

app.task(name="report", queue="reports", timeout=300, max_attempts=3, retry=RetryPolicy(base_delay=2.0))(report.report)
app.task(name="import_contacts", queue="imports", timeout=600, max_attempts=5)(contacts.import_contacts)
app.task(name="sales_summary", queue="reports", timeout=120, max_attempts=3)(report_workflow.sales_summary)
app.task(name="notify_report", queue="default", timeout=60, max_attempts=5)(report_workflow.notify_report)
app.task(name="thumbnails", queue="media", timeout=300, max_attempts=3)(thumbnails.thumbnails)
app.task(name="transcode", queue="media", timeout=3600, max_attempts=2)(transcode.transcode)
app.task(name="classify", queue="media", timeout=300, max_attempts=3, resources={"gpu": 1})(vision.classify)
app.task(name="export", queue="exports", timeout=1800, max_attempts=3)(export.export)
app.task(name="newsletter", queue="mail", timeout=300, max_attempts=5)(newsletter.newsletter)
app.task(name=newsletter.CHUNK_TASK, queue="mail", timeout=600, max_attempts=5, retry=RetryPolicy(base_delay=1.0))(
    newsletter.newsletter_chunk
)
app.task(name="countdown", queue="default", timeout=3700)(demo.countdown)
app.task(name="flaky", queue="default", max_attempts=3, retry=RetryPolicy(base_delay=0.5, max_delay=5.0))(demo.flaky)

QUEUES = tuple(app.queues)
"""Every queue the example uses: ``conveyor worker --app examples.app:app --queues default,reports,imports,...``."""
