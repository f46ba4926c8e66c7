"""The built-in send task: one notification mail to one recipient, retried like any job.

A send is an ordinary job on queue ``conveyor.email``: a refused connection, a timeout or a
4xx answer fails the attempt and the worker retries it with the settings' backoff; a 5xx
answer (the server will never take this mail, e.g. an unknown mailbox) is not retried. The
``Message-ID`` is derived from the send job's id, the same on every retry, so a mail sent twice
(the worker died after the server took it, before the job was marked done) is recognisably one.
"""

from __future__ import annotations

from email.message import EmailMessage
from typing import TYPE_CHECKING, Any

import aiosmtplib

from conveyor.context import JobContext
from conveyor.email.settings import EMAIL_QUEUE, SEND_TASK, EmailSettings
from conveyor.email.smtp import send_message
from conveyor.errors import ConveyorError
from conveyor.worker.errors import DoNotRetry

if TYPE_CHECKING:
    from conveyor.app import Conveyor


class SendFailed(ConveyorError):
    """The SMTP server did not take the mail this time (no answer, 4xx); retried."""


def build_message(sender: str, to: str, subject: str, text: str, message_id: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = message_id
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: vacation responders stay quiet
    message.set_content(text)
    return message


def install(app: Conveyor, settings: EmailSettings) -> None:
    """Register ``conveyor.email.send`` on ``app`` with the settings' retry options."""

    async def send(ctx: JobContext, job_id: str, event: str, to: str, subject: str, text: str) -> dict[str, Any]:
        """Send one notification mail; the server's acceptance is done, a 5xx is final."""
        server = settings.server
        if server is None:
            raise DoNotRetry("no SMTP server is configured on this worker (--smtp-url or $CONVEYOR_SMTP_URL)")
        domain = settings.sender.rpartition("@")[2]
        message = build_message(settings.sender, to, subject, text, f"<{ctx.job_id}@{domain}>")
        try:
            await send_message(server, message)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            raise DoNotRetry(f"{event} mail of job {job_id}: {server} refused the recipient: {exc}") from None
        except aiosmtplib.SMTPResponseException as exc:
            if 500 <= exc.code < 600:
                raise DoNotRetry(f"{event} mail of job {job_id}: {server} answered {exc.code}") from None
            raise SendFailed(f"{event} mail of job {job_id}: {server} answered {exc.code}") from None
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise SendFailed(f"{event} mail of job {job_id}: {server}: {type(exc).__name__}") from None
        return {"to": to, "attempt": ctx.attempt}

    register = app.task(
        name=SEND_TASK, queue=EMAIL_QUEUE, max_attempts=settings.max_attempts, timeout=120.0, retry=settings.retry
    )
    register(send)
