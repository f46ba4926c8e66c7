"""Newsletter: mail every subscriber, in chunks, each recipient at most once even on retries.

``newsletter`` is the fan-out: it reads the subscriber list and enqueues one
``newsletter_chunk`` job per ``chunk_size`` recipients, all in one engine transaction
(``enqueue_many``), each with an idempotency key derived from its own job id and chunk number.
A retried fan-out (its worker died after the enqueue) therefore finds its chunks already there
instead of doubling them.

Each chunk sends through real SMTP (``aiosmtplib``, one connection per chunk) and records
every accepted mail with ``ctx.once_async("mail:<address>", ...)``: a chunk retried after its
worker died mid-way skips every recipient whose mail the server already accepted. The one
window left is a worker killed after the server accepted a mail and before the record is
written; that mail carries a ``Message-ID`` derived from the chunk and the recipient, the same
on the resend, so the receiving side can drop it.

The SMTP server comes from ``$EXAMPLES_SMTP_URL`` (else ``$CONVEYOR_SMTP_URL``), e.g.
``smtp://127.0.0.1:1025`` for a local debugging server.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Iterable
from contextlib import closing
from email.message import EmailMessage
from typing import Annotated

import aiosmtplib
from pydantic import Field

from conveyor import DoNotRetry, JobContext
from conveyor.backend.protocol import EnqueueRequest
from conveyor.email.smtp import SmtpServer, check_address
from conveyor.task import CallOptions
from examples.contacts import database_path

CHUNK_TASK = "newsletter_chunk"
"""The name examples/app.py registers ``newsletter_chunk`` under (the fan-out enqueues it)."""
SENDER = "newsletter@example.com"
Subject = Annotated[str, Field(min_length=1, max_length=200)]
Body = Annotated[str, Field(min_length=1, max_length=100_000)]
ChunkSize = Annotated[int, Field(ge=1, le=1000)]
Recipients = Annotated[list[str], Field(min_length=1, max_length=1000)]


def _connect() -> sqlite3.Connection:
    path = database_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=30, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE IF NOT EXISTS subscribers (email TEXT PRIMARY KEY, name TEXT NOT NULL DEFAULT '')")
    return conn


def add_subscribers(people: Iterable[tuple[str, str]]) -> int:
    """Subscribe (email, name) pairs to the example list; returns how many rows were written."""
    rows = [(check_address(email.lower()), name) for email, name in people]
    with closing(_connect()) as conn:
        conn.executemany("INSERT INTO subscribers (email, name) VALUES (?, ?) ON CONFLICT (email) DO NOTHING", rows)
    return len(rows)


def subscribers() -> list[str]:
    with closing(_connect()) as conn:
        return [row[0] for row in conn.execute("SELECT email FROM subscribers ORDER BY email")]


def smtp_server() -> SmtpServer:
    url = os.environ.get("EXAMPLES_SMTP_URL") or os.environ.get("CONVEYOR_SMTP_URL")
    if not url:
        raise DoNotRetry("no SMTP server: set $EXAMPLES_SMTP_URL (or run the worker with --smtp-url)")
    return SmtpServer.from_url(url)


async def newsletter(ctx: JobContext, subject: Subject, body: Body, chunk_size: ChunkSize = 100) -> dict[str, int]:
    """Fan out: one ``newsletter_chunk`` job per ``chunk_size`` subscribers, enqueued together."""
    everyone = subscribers()
    chunks = [everyone[i : i + chunk_size] for i in range(0, len(everyone), chunk_size)]
    requests: list[EnqueueRequest] = []
    for n, recipients in enumerate(chunks):
        args = {"campaign": ctx.job_id, "subject": subject, "body": body, "recipients": recipients}
        options = CallOptions(idempotency_key=f"newsletter:{ctx.job_id}:{n}", tenant=ctx.job.tenant)
        requests.append(ctx.app.build_request(CHUNK_TASK, args, options))
    backend = await ctx.app.backend()
    results = await backend.enqueue_many(requests) if requests else []
    ctx.app.telemetry.submitted([r.job for r in results], [r.created for r in results])
    await ctx.progress_async(1.0, f"{len(everyone)} subscribers in {len(chunks)} chunk(s)")
    return {"subscribers": len(everyone), "chunks": len(chunks), "new_chunks": sum(r.created for r in results)}


def message_id(campaign: str, address: str) -> str:
    """The same for every send of this campaign to this address (receivers dedupe on it)."""
    digest = hashlib.sha256(f"{campaign}|{address}".encode()).hexdigest()[:24]
    return f"<{digest}.{campaign}@newsletter.example.com>"


def build(campaign: str, subject: str, body: str, address: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = SENDER
    message["To"] = address
    message["Subject"] = subject
    message["Message-ID"] = message_id(campaign, address)
    message["List-Id"] = f"<{campaign}.newsletter.example.com>"
    message.set_content(body)
    return message


async def newsletter_chunk(
    ctx: JobContext, campaign: str, subject: Subject, body: Body, recipients: Recipients
) -> dict[str, int]:
    """Mail one chunk of subscribers over one SMTP connection; each address at most once per campaign."""
    server = smtp_server()
    client = aiosmtplib.SMTP(
        hostname=server.host,
        port=server.port,
        use_tls=server.use_tls,
        start_tls=server.starttls,
        username=server.username,
        password=server.password,
        timeout=server.timeout,
    )
    sent = refused = 0
    async with client:
        for i, address in enumerate(recipients):
            fresh = False

            async def deliver(address: str = address) -> str:
                nonlocal fresh
                try:
                    await client.send_message(build(campaign, subject, body, address))
                except aiosmtplib.SMTPRecipientsRefused:
                    return "refused"  # a bad mailbox is final: recorded, never retried
                fresh = True
                return "sent"

            outcome = await ctx.once_async(f"mail:{address}", deliver)
            sent += fresh
            refused += outcome == "refused"
            if (i + 1) % 10 == 0 or i + 1 == len(recipients):
                await ctx.progress_async((i + 1) / len(recipients), f"{i + 1}/{len(recipients)} recipients")
    return {"recipients": len(recipients), "sent_now": sent, "refused": refused}
