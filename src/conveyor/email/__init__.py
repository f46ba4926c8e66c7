"""Email: an SMTP client configured by URL, and email notification of finished jobs.

Configure ``Conveyor(email=EmailSettings(...))`` (or only ``--smtp-url`` / ``$CONVEYOR_SMTP_URL``
for per-submit ``notify``); run a worker on queue ``conveyor.email`` to send. See
docs/notifications-email.md and docs/decisions/0008-email-and-resources.md.
"""

from conveyor.email.settings import EMAIL_QUEUE, SEND_TASK, EmailSettings
from conveyor.email.smtp import SmtpServer, check_address, send_message

__all__ = ["EMAIL_QUEUE", "SEND_TASK", "EmailSettings", "SmtpServer", "check_address", "send_message"]
