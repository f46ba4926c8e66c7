"""What an application configures for email notifications: the server, the sender, who is told.

``EmailSettings(smtp_url=..., sender=..., recipients=("ops@example.com",))`` tells the
configured recipients of every ending of the matching tasks, and lets a submit name its own
recipients (``notify={"email": [...]}``). The SMTP URL may carry a password, so it stays in the
application's configuration (code or ``$CONVEYOR_SMTP_URL``), never in the engine: a delivery
job stores only the recipient and the message, and the worker that sends it uses its own
copy of the settings.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from conveyor.email.smtp import SmtpServer, check_address
from conveyor.errors import ConfigError
from conveyor.types import RetryPolicy

EMAIL_QUEUE = "conveyor.email"
SEND_TASK = "conveyor.email.send"
EVENTS = ("job.succeeded", "job.failed", "job.canceled")
DEFAULT_SENDER = "conveyor@localhost.localdomain"
"""The From of notifications unless `sender=` or $CONVEYOR_SMTP_FROM says otherwise."""
SEND_RETRY = RetryPolicy(base_delay=10.0, factor=2.0, max_delay=3600.0, jitter=True)
MAX_NOTIFY = 20
"""Most recipients one submit may name."""


@dataclass(frozen=True)
class EmailSettings:
    """Email notifications of an app: ``Conveyor(email=EmailSettings(...))``.

    ``smtp_url`` defaults to ``$CONVEYOR_SMTP_URL`` (``conveyor worker|serve --smtp-url`` sets
    it). ``recipients`` are told of every ``events`` ending of ``tasks`` (empty: all tasks);
    per-submit recipients (``notify``) of every ending of their own job. Sends are jobs on
    queue ``conveyor.email``, retried ``max_attempts`` times with ``retry`` backoff.
    """

    smtp_url: str | None = None
    sender: str = DEFAULT_SENDER
    recipients: tuple[str, ...] = ()
    events: tuple[str, ...] = EVENTS
    tasks: tuple[str, ...] = ()
    max_attempts: int = 8
    retry: RetryPolicy = field(default_factory=lambda: SEND_RETRY)

    def __post_init__(self) -> None:
        url = self.smtp_url or os.environ.get("CONVEYOR_SMTP_URL") or None
        object.__setattr__(self, "smtp_url", url)
        if url is not None:
            SmtpServer.from_url(url)  # a bad URL fails at start-up
        object.__setattr__(self, "recipients", tuple(self.recipients))
        object.__setattr__(self, "events", tuple(self.events))
        object.__setattr__(self, "tasks", tuple(self.tasks))
        try:
            check_address(self.sender)
            for address in self.recipients:
                check_address(address)
        except ValueError as exc:
            raise ConfigError(f"email settings: {exc}") from None
        unknown = set(self.events) - set(EVENTS)
        if unknown or not self.events:
            raise ConfigError(f"email events must be among {', '.join(EVENTS)}; got {sorted(unknown) or 'none'}")
        if self.max_attempts < 1:
            raise ConfigError("email max_attempts must be at least 1")

    @classmethod
    def from_env(cls) -> EmailSettings | None:
        """Settings from ``$CONVEYOR_SMTP_URL`` (and ``$CONVEYOR_SMTP_FROM``) alone, or None."""
        url = os.environ.get("CONVEYOR_SMTP_URL")
        if not url:
            return None
        return cls(smtp_url=url, sender=os.environ.get("CONVEYOR_SMTP_FROM") or DEFAULT_SENDER)

    @property
    def server(self) -> SmtpServer | None:
        return SmtpServer.from_url(self.smtp_url) if self.smtp_url else None

    def wants(self, event: str, task: str) -> bool:
        """Whether the configured recipients are told of this ending."""
        return event in self.events and (not self.tasks or task in self.tasks)
